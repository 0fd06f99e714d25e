// The goals a client has sent and that have not ended, for every transport's client: each
// goal's events routed by its id to the callbacks given when it was sent, until it ends or the
// connection fails them all. Private to the runtime (not installed).
#pragma once

#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "switchboard/client.hpp"

namespace switchboard::detail {

/// What kind of event a goal's message is.
enum class GoalEventType : std::uint8_t { Status, Feedback, Finished };

/// How a goal ended, from its end state: the result values object, `GoalCancelled`, the goal's
/// error (`code` is the message's, used when the error object has none), or a `DecodeError`
/// for an end state that makes no sense. Sets `status` to the end status.
inline Outcome goal_outcome(const Json& body, std::uint8_t code, GoalStatus& status) {
    Outcome outcome;
    const auto found = body.is_object() ? body.find("status") : body.end();
    const auto named = found != body.end() && found->is_string()
                           ? parse_goal_status(found->get<std::string>())
                           : std::nullopt;
    if (!named || !is_terminal(*named)) {
        status = GoalStatus::Failed;
        outcome.error = std::make_exception_ptr(
            DecodeError("status", "a finished goal's state has no end status"));
        return outcome;
    }
    status = *named;
    if (status == GoalStatus::Succeeded) {
        const auto result = body.find("result");
        outcome.value = result != body.end() ? *result : Json::object();
    } else if (status == GoalStatus::Cancelled) {
        outcome.error = std::make_exception_ptr(GoalCancelled());
    } else {
        const Json error = body.value("error", Json::object());
        std::string name = error_names::internal;
        std::string message = "(no message)";
        std::optional<Json> details;
        if (error.is_object()) {
            if (auto n = error.find("name"); n != error.end() && n->is_string()) name = *n;
            if (auto m = error.find("message"); m != error.end() && m->is_string()) message = *m;
            if (auto d = error.find("details"); d != error.end() && !d->is_null()) details = *d;
            if (auto c = error.find("code"); c != error.end() && c->is_number_unsigned() &&
                                             *c <= 255U) {
                code = c->get<std::uint8_t>();
            }
        }
        outcome.error = std::make_exception_ptr(
            RemoteError(error_code_from(code), name, message, std::move(details)));
    }
    return outcome;
}

/// The table of a client's goals that have not ended.
///
/// Thread safety: every member function may be called from any thread at the same time;
/// callbacks are called without its lock held, by the thread that delivers the event.
class GoalRoutes {
public:
    /// Routes goal `id`'s events to `events` from now on.
    void add(const std::string& id, GoalEvents events) {
        std::lock_guard lock(mutex_);
        routes_[id] = std::move(events);
    }

    /// Stops routing goal `id` (the server refused it).
    void remove(const std::string& id) {
        std::lock_guard lock(mutex_);
        routes_.erase(id);
    }

    /// Delivers one event whose payload is `body`; `code` is the message's error code (for a
    /// finished goal). Events of goals not in the table are dropped.
    void deliver(GoalEventType type, const Json& body, std::uint8_t code) {
        if (!body.is_object()) return;
        const auto id = body.find("goal");
        if (id == body.end() || !id->is_string()) return;
        const auto goal = id->get<std::string>();
        if (type == GoalEventType::Finished) {
            GoalEvents events;
            {
                std::lock_guard lock(mutex_);
                auto found = routes_.find(goal);
                if (found == routes_.end()) return;
                events = std::move(found->second);
                routes_.erase(found);
            }
            GoalStatus status = GoalStatus::Failed;
            Outcome outcome = goal_outcome(body, code, status);
            call(events.status, status, goal);
            call(events.finished, std::move(outcome), goal);
            return;
        }
        std::function<void(const Json&)> feedback;
        std::function<void(GoalStatus)> on_status;
        {
            std::lock_guard lock(mutex_);
            auto found = routes_.find(goal);
            if (found == routes_.end()) return;
            feedback = found->second.feedback;
            on_status = found->second.status;
        }
        if (type == GoalEventType::Feedback) {
            if (const auto values = body.find("feedback"); values != body.end()) {
                call(feedback, *values, goal);
            }
            return;
        }
        const auto named = body.find("status");
        const auto status = named != body.end() && named->is_string()
                                ? parse_goal_status(named->get<std::string>())
                                : std::nullopt;
        if (status && !is_terminal(*status)) call(on_status, *status, goal);
    }

    /// Ends every goal with `TransportError(why)` (the connection is gone).
    void fail_all(const std::string& why) {
        std::map<std::string, GoalEvents> routes;
        {
            std::lock_guard lock(mutex_);
            routes.swap(routes_);
        }
        for (auto& [id, events] : routes) {
            Outcome outcome;
            outcome.error = std::make_exception_ptr(TransportError(why));
            call(events.finished, std::move(outcome), id);
        }
    }

private:
    /// Calls `callback` with `value`; one that throws (a feedback that does not decode) is
    /// reported, and the connection goes on.
    template <class Callback, class Value>
    static void call(const Callback& callback, Value&& value, const std::string& goal) {
        if (!callback) return;
        try {
            callback(std::forward<Value>(value));
        } catch (const std::exception& error) {
            (void)std::fprintf(stderr, "switchboard: an event of goal `%s` not delivered: %s\n",
                               goal.c_str(), error.what());
        } catch (...) {
            (void)std::fprintf(stderr, "switchboard: a callback for goal `%s` threw\n",
                               goal.c_str());
        }
    }

    std::mutex mutex_;
    std::map<std::string, GoalEvents> routes_;
};

}  // namespace switchboard::detail
