// The server's goals (goals.hpp) and what both sides share about them (goal.hpp): goal statuses,
// goal ids, and the book of a server's goals with one thread per running goal.
#include "goals.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <random>
#include <utility>

namespace switchboard {

namespace {

constexpr std::array<std::pair<GoalStatus, std::string_view>, 6> kStatusNames{{
    {GoalStatus::Accepted, "accepted"},
    {GoalStatus::Executing, "executing"},
    {GoalStatus::Canceling, "canceling"},
    {GoalStatus::Succeeded, "succeeded"},
    {GoalStatus::Cancelled, "cancelled"},
    {GoalStatus::Failed, "failed"},
}};

}  // namespace

std::string_view goal_status_name(GoalStatus status) noexcept {
    for (const auto& [value, name] : kStatusNames) {
        if (value == status) return name;
    }
    return "failed";
}

std::optional<GoalStatus> parse_goal_status(std::string_view name) noexcept {
    for (const auto& [value, text] : kStatusNames) {
        if (text == name) return value;
    }
    return std::nullopt;
}

std::string random_goal_id() {
    static std::mutex mutex;
    static std::mt19937_64 rng{std::random_device{}()};
    std::uint64_t high = 0;
    std::uint64_t low = 0;
    {
        std::lock_guard lock(mutex);
        high = rng();
        low = rng();
    }
    high = (high & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
    low = (low & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
    std::array<char, 37> text{};
    (void)std::snprintf(text.data(), text.size(), "%08llx-%04llx-%04llx-%04llx-%012llx",
                        static_cast<unsigned long long>(high >> 32),
                        static_cast<unsigned long long>((high >> 16) & 0xFFFF),
                        static_cast<unsigned long long>(high & 0xFFFF),
                        static_cast<unsigned long long>(low >> 48),
                        static_cast<unsigned long long>(low & 0xFFFFFFFFFFFFULL));
    return {text.data()};
}

bool is_valid_goal_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 128) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.' || c == ':';
    });
}

namespace detail {

using Clock = std::chrono::steady_clock;

/// One goal as the server keeps it; it is also the `GoalControl` its handler holds.
struct ServerGoal final : public GoalControl {
    ServerGoal(std::string goal_id, std::string action_name, CallContext sender)
        : id_(std::move(goal_id)), action(std::move(action_name)), sender_(std::move(sender)) {}

    [[nodiscard]] const std::string& id() const override { return id_; }
    [[nodiscard]] const CallContext& client() const override { return sender_; }

    void feedback(const Json& values) override {
        std::lock_guard lock(mutex);
        if (is_terminal(status)) return;
        broadcast(GoalEventKind::Feedback, Json{{"goal", id_}, {"feedback", values}},
                  ErrorCode::Success);
    }

    [[nodiscard]] bool cancel_requested() const override {
        std::lock_guard lock(mutex);
        return cancel;
    }

    [[nodiscard]] bool wait_cancel_requested(std::chrono::nanoseconds timeout) const override {
        std::unique_lock lock(mutex);
        return cancelled.wait_for(lock, timeout, [this] { return cancel; });
    }

    /// The goal's state object; the caller holds `mutex`.
    [[nodiscard]] Json state() const {
        if (is_terminal(status)) return end_state;
        return Json{{"goal", id_}, {"status", goal_status_name(status)}};
    }

    /// Sends an event to every follower; the caller holds `mutex`, so events keep their order.
    void broadcast(GoalEventKind kind, const Json& payload, ErrorCode code) const {
        for (const auto& follower : followers) follower->goal_event(kind, action, payload, code);
    }

    /// Asks the handler to cancel, unless the goal has ended or was asked already; the caller
    /// holds `mutex`.
    void request_cancel() {
        if (is_terminal(status) || cancel) return;
        cancel = true;
        status = GoalStatus::Canceling;
        cancelled.notify_all();
        broadcast(GoalEventKind::Status, state(), ErrorCode::Success);
    }

    const std::string id_;
    const std::string action;
    const CallContext sender_;

    /// Guards everything below; events are sent while it is held.
    mutable std::mutex mutex;
    mutable std::condition_variable cancelled;
    GoalStatus status = GoalStatus::Accepted;
    bool cancel = false;
    /// The end state, once the goal has ended.
    Json end_state;
    Clock::time_point ended_at;
    std::vector<std::shared_ptr<GoalFollower>> followers;
    /// The follower that owns the goal, `nullptr` once it left.
    const GoalFollower* owner = nullptr;
    /// When the owner left, if it did and nobody attached since.
    std::optional<Clock::time_point> owner_left;
    /// Runs the handler; guarded by the book's mutex.
    std::thread runner;
};

namespace {

/// The goal id of a request body, if it has a valid one.
std::optional<std::string> goal_id_of(const Json& body) {
    if (!body.is_object()) return std::nullopt;
    const auto found = body.find("goal");
    if (found == body.end() || !found->is_string()) return std::nullopt;
    auto id = found->get<std::string>();
    if (!is_valid_goal_id(id)) return std::nullopt;
    return id;
}

GoalAnswer malformed_request() {
    GoalAnswer answer;
    answer.code = ErrorCode::PayloadError;
    answer.name = error_names::protocol_error;
    answer.payload = Json{{"message",
                           "a goal request needs a goal id of 1 to 128 ASCII letters, digits, "
                           "`-`, `_`, `.` or `:`"}};
    answer.malformed = true;
    return answer;
}

GoalAnswer refusal(const std::string& goal, ErrorCode code, std::string name,
                   const std::string& message, const std::optional<Json>& details = std::nullopt) {
    GoalAnswer answer;
    answer.code = code;
    answer.name = std::move(name);
    answer.payload = Json{{"goal", goal}, {"message", message}};
    if (details) answer.payload["details"] = *details;
    return answer;
}

GoalAnswer success(Json state) {
    GoalAnswer answer;
    answer.payload = std::move(state);
    return answer;
}

/// How many ended goals the book keeps at most, however young.
constexpr std::size_t kMaxEndedGoals = 1024;

}  // namespace

GoalBook::GoalBook(Service& service, GoalOptions options)
    : service_(service), options_(options), housekeeper_([this] { housekeeping(); }) {}

GoalBook::~GoalBook() { stop(); }

void GoalBook::send(const std::string& action, const Json& body, const CallContext& sender,
                    const std::shared_ptr<GoalFollower>& follower, const Answer& answer) {
    const auto id = goal_id_of(body);
    if (!id) return answer(malformed_request());
    const auto args = body.find("args");
    if (args == body.end() || !args->is_object()) {
        return answer(refusal(*id, ErrorCode::ServerDeserializationError,
                              error_names::invalid_arguments,
                              "the goal's arguments must be a JSON object"));
    }
    // Checked before the handler is asked, and again (with the goal taking its place) after.
    auto admissible = [&]() -> std::optional<GoalAnswer> {
        if (stopping_) {
            return refusal(*id, ErrorCode::ServiceUnavailable, "ServerStopping",
                           "the server is stopping");
        }
        if (goals_.contains(*id)) {
            return refusal(*id, ErrorCode::ClientError, error_names::duplicate_goal,
                           "goal id `" + *id + "` is in use");
        }
        if (running_[action] >= options_.action_limit) {
            return refusal(*id, ErrorCode::ServiceUnavailable, error_names::too_many_goals,
                           "action `" + action + "` already runs " +
                               std::to_string(options_.action_limit) + " goals");
        }
        return std::nullopt;
    };
    {
        std::lock_guard lock(mutex_);
        if (auto refused = admissible()) return answer(*refused);
    }
    GoalRunner runner;
    try {
        runner = service_.accept_goal(action, *args, sender);
    } catch (const RemoteError& error) {
        return answer(refusal(*id, error.code(), error.name(), error.message(), error.details()));
    } catch (const DecodeError& error) {
        return answer(refusal(*id, ErrorCode::ServerDeserializationError,
                              error_names::invalid_arguments, error.what()));
    } catch (...) {
        return answer(refusal(*id, ErrorCode::ServerError, error_names::internal,
                              error_names::internal_message));
    }
    auto goal = std::make_shared<ServerGoal>(*id, action, sender);
    goal->followers.push_back(follower);
    goal->owner = follower.get();
    // The goal's lock is held until the answer is out, so its thread's first event follows it.
    std::lock_guard goal_lock(goal->mutex);
    {
        std::lock_guard lock(mutex_);
        if (auto refused = admissible()) return answer(*refused);
        goals_.emplace(*id, goal);
        running_[action] += 1;
        goal->runner = std::thread([this, goal, runner = std::move(runner)] { run(goal, runner); });
    }
    answer(success(goal->state()));
}

std::shared_ptr<ServerGoal> GoalBook::find(const std::string& action, const Json& body,
                                           const Answer& answer) {
    const auto id = goal_id_of(body);
    if (!id) {
        answer(malformed_request());
        return nullptr;
    }
    std::shared_ptr<ServerGoal> goal;
    {
        std::lock_guard lock(mutex_);
        if (auto found = goals_.find(*id); found != goals_.end()) goal = found->second;
    }
    if (!goal || goal->action != action) {
        answer(refusal(*id, ErrorCode::MethodNotFound, error_names::unknown_goal,
                       "no goal `" + *id + "` of action `" + action + "` is known"));
        return nullptr;
    }
    return goal;
}

void GoalBook::cancel(const std::string& action, const Json& body, const Answer& answer) {
    const auto goal = find(action, body, answer);
    if (!goal) return;
    std::lock_guard lock(goal->mutex);
    goal->request_cancel();
    answer(success(goal->state()));
}

void GoalBook::attach(const std::string& action, const Json& body,
                      const std::shared_ptr<GoalFollower>& follower, const Answer& answer) {
    const auto goal = find(action, body, answer);
    if (!goal) return;
    const auto follow = body.find("follow");
    std::lock_guard lock(goal->mutex);
    if (follow != body.end() && *follow == Json(true) && !is_terminal(goal->status)) {
        auto& followers = goal->followers;
        if (std::find(followers.begin(), followers.end(), follower) == followers.end()) {
            followers.push_back(follower);
        }
        goal->owner = follower.get();
        goal->owner_left.reset();
    }
    answer(success(goal->state()));
}

void GoalBook::follower_gone(const GoalFollower* follower) {
    std::vector<std::shared_ptr<ServerGoal>> goals;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [id, goal] : goals_) goals.push_back(goal);
    }
    for (const auto& goal : goals) {
        std::lock_guard lock(goal->mutex);
        std::erase_if(goal->followers, [follower](const std::shared_ptr<GoalFollower>& f) {
            return f.get() == follower;
        });
        if (goal->owner == follower) {
            goal->owner = nullptr;
            if (!is_terminal(goal->status)) goal->owner_left = Clock::now();
        }
    }
}

void GoalBook::run(const std::shared_ptr<ServerGoal>& goal, const GoalRunner& runner) {
    {
        std::lock_guard lock(goal->mutex);
        if (goal->status == GoalStatus::Accepted) {
            goal->status = GoalStatus::Executing;
            goal->broadcast(GoalEventKind::Status, goal->state(), ErrorCode::Success);
        }
    }
    Json end{{"goal", goal->id()}};
    ErrorCode code = ErrorCode::Success;
    auto fail = [&](ErrorCode error_code, const std::string& name, const std::string& message,
                    const std::optional<Json>& details) {
        code = error_code;
        end["status"] = "failed";
        Json error{{"name", name},
                   {"code", static_cast<int>(error_code)},
                   {"message", message}};
        if (details) error["details"] = *details;
        end["error"] = std::move(error);
    };
    try {
        Json result = runner(*goal);
        end["status"] = "succeeded";
        end["result"] = result.is_object() ? std::move(result) : Json::object();
    } catch (const GoalCancelled&) {
        end["status"] = "cancelled";
    } catch (const RemoteError& error) {
        fail(error.code(), error.name(), error.message(), error.details());
    } catch (...) {
        fail(ErrorCode::ServerError, error_names::internal, error_names::internal_message, std::nullopt);
    }
    {
        std::lock_guard lock(goal->mutex);
        goal->status = *parse_goal_status(end["status"].get<std::string>());
        goal->end_state = end;
        goal->ended_at = Clock::now();
        goal->broadcast(GoalEventKind::Finished, end, code);
        goal->followers.clear();
        goal->owner_left.reset();
    }
    std::lock_guard lock(mutex_);
    running_[goal->action] -= 1;
    wake_.notify_all();
}

void GoalBook::housekeeping() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        wake_.wait_for(lock, std::chrono::milliseconds(250));
        if (stopping_) return;
        std::vector<std::shared_ptr<ServerGoal>> goals;
        for (const auto& [id, goal] : goals_) goals.push_back(goal);
        lock.unlock();
        const auto now = Clock::now();
        std::vector<std::pair<Clock::time_point, std::string>> ended;
        std::vector<std::thread> finished;
        for (const auto& goal : goals) {
            std::lock_guard goal_lock(goal->mutex);
            if (is_terminal(goal->status)) {
                ended.emplace_back(goal->ended_at, goal->id());
            } else if (goal->owner_left && now - *goal->owner_left >= options_.disconnect_grace) {
                goal->owner_left.reset();
                goal->request_cancel();
            }
        }
        std::sort(ended.begin(), ended.end());
        lock.lock();
        for (std::size_t i = 0; i < ended.size(); ++i) {
            const auto found = goals_.find(ended[i].second);
            if (found == goals_.end()) continue;
            // An ended goal's thread has done its work: it is joined now, and the goal itself
            // forgotten once its retention has passed or too many ended goals are kept.
            if (found->second->runner.joinable()) finished.push_back(std::move(found->second->runner));
            if (now - ended[i].first >= options_.retention || ended.size() - i > kMaxEndedGoals) {
                goals_.erase(found);
            }
        }
        lock.unlock();
        for (auto& thread : finished) thread.join();
        lock.lock();
    }
}

void GoalBook::stop() {
    std::vector<std::shared_ptr<ServerGoal>> goals;
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && !housekeeper_.joinable()) return;
        stopping_ = true;
        wake_.notify_all();
        for (const auto& [id, goal] : goals_) goals.push_back(goal);
    }
    if (housekeeper_.joinable()) housekeeper_.join();
    for (const auto& goal : goals) {
        std::lock_guard lock(goal->mutex);
        goal->request_cancel();
    }
    std::vector<std::thread> runners;
    {
        std::lock_guard lock(mutex_);
        for (const auto& goal : goals) {
            if (goal->runner.joinable()) runners.push_back(std::move(goal->runner));
        }
    }
    for (auto& runner : runners) runner.join();
}

}  // namespace detail

}  // namespace switchboard
