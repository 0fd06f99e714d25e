// The server's goals, whatever the transport: accepting, running (one thread per goal),
// following, cancelling and attaching to them, their limits, retention and the grace period of
// a goal whose owner left (docs/wire/unix.md §5.5). Private to the runtime (not installed).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "switchboard/server.hpp"

namespace switchboard::detail {

/// What kind of goal event a follower is sent.
enum class GoalEventKind : std::uint8_t { Status, Feedback, Finished };

/// Where a goal's events go: one connection (Unix) or one client's event topic (MQTT).
///
/// Thread safety: `goal_event` is called from any thread, one event of a goal at a time.
class GoalFollower {
public:
    virtual ~GoalFollower() = default;
    /// Sends one event of a goal of `action`; `code` is the error's code for a failed end.
    virtual void goal_event(GoalEventKind kind, const std::string& action, const Json& payload,
                            ErrorCode code) = 0;
};

/// The answer to a goal request: a goal state (`code` Success) or a refusal.
// clang-tidy sees nlohmann::json's noexcept special members call its (throwing) invariant
// check; they cannot throw for a valid json value.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct GoalAnswer {
    ErrorCode code = ErrorCode::Success;
    /// The error's name; empty on success.
    std::string name;
    Json payload;
    /// The request was not a goal request at all (a bad goal id): Unix answers it with ERROR.
    bool malformed = false;
};

/// How a server keeps its goals.
struct GoalOptions {
    /// How many goals one action runs at once; more are refused with `TooManyGoals`.
    std::size_t action_limit = 16;
    /// How long an ended goal's end state is kept for late attaches and cancels.
    std::chrono::milliseconds retention{60000};
    /// How long a running goal whose owner left waits for another to attach before it is
    /// cancelled.
    std::chrono::milliseconds disconnect_grace{10000};
};

struct ServerGoal;

/// The goals of one server.
///
/// Thread safety: every member function may be called from any thread at the same time, except
/// that `stop` (and the destructor) must not run on a goal's thread. A request's answer is
/// handed to `answer` before any later event of that goal is sent to `follower`.
class GoalBook {
public:
    using Answer = std::function<void(const GoalAnswer&)>;

    explicit GoalBook(Service& service, GoalOptions options = {});
    ~GoalBook();
    GoalBook(const GoalBook&) = delete;
    GoalBook& operator=(const GoalBook&) = delete;

    /// SEND_GOAL: `body` is `{"goal":…,"args":{…}}`; an accepted goal's sender follows it.
    void send(const std::string& action, const Json& body, const CallContext& sender,
              const std::shared_ptr<GoalFollower>& follower, const Answer& answer);
    /// CANCEL_GOAL: `body` is `{"goal":…}`.
    void cancel(const std::string& action, const Json& body, const Answer& answer);
    /// ATTACH_GOAL: `body` is `{"goal":…,"follow":…}`; with `follow` the follower becomes the
    /// goal's owner and receives its later events.
    void attach(const std::string& action, const Json& body,
                const std::shared_ptr<GoalFollower>& follower, const Answer& answer);
    /// The follower is gone (its connection closed): it receives nothing more, and the goals it
    /// owned start their grace period. Once this returns, no event is being sent to it.
    void follower_gone(const GoalFollower* follower);
    /// Asks every running goal to cancel and waits for their handlers to return.
    void stop();

private:
    std::shared_ptr<ServerGoal> find(const std::string& action, const Json& body,
                                     const Answer& answer);
    void run(const std::shared_ptr<ServerGoal>& goal, const GoalRunner& runner);
    void housekeeping();

    Service& service_;
    GoalOptions options_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::map<std::string, std::shared_ptr<ServerGoal>> goals_;
    /// How many goals of each action are running.
    std::map<std::string, std::size_t> running_;
    std::thread housekeeper_;
};

}  // namespace switchboard::detail
