// What the client and server sides of actions share: a goal's status, the exception that ends
// a goal cancelled, and goal ids (docs/wire/unix.md §5.5).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "switchboard/error.hpp"

namespace switchboard {

/// Where a goal is in its life. The last three are end states.
enum class GoalStatus : std::uint8_t {
    /// The server accepted the goal; its handler has not started.
    Accepted,
    /// The handler is running.
    Executing,
    /// A client asked to cancel; the handler decides how the goal ends.
    Canceling,
    /// The handler returned a result.
    Succeeded,
    /// The goal ended cancelled.
    Cancelled,
    /// The handler failed (a declared error, another `RemoteError`, or `Internal`).
    Failed,
};

/// The status's name on the wire: `accepted`, `executing`, … `failed`.
std::string_view goal_status_name(GoalStatus status) noexcept;
/// Reads a status name; `std::nullopt` for one that is not on the list.
std::optional<GoalStatus> parse_goal_status(std::string_view name) noexcept;
/// Whether `status` is an end state (`Succeeded`, `Cancelled` or `Failed`).
constexpr bool is_terminal(GoalStatus status) noexcept {
    return status == GoalStatus::Succeeded || status == GoalStatus::Cancelled ||
           status == GoalStatus::Failed;
}

/// The goal was cancelled. A handler throws it to end its goal cancelled; a client's result
/// future throws it for a goal that ended cancelled.
class GoalCancelled : public Error {
public:
    GoalCancelled() : Error("the goal was cancelled") {}
};

/// A fresh goal id: a random (version 4) UUID in its usual text form.
std::string random_goal_id();

/// Whether `id` may name a goal: 1 to 128 ASCII letters, digits, `-`, `_`, `.` or `:`.
bool is_valid_goal_id(std::string_view id) noexcept;

/// The stable names of the errors the runtime produces for actions.
namespace error_names {
inline constexpr const char* unknown_action = "UnknownAction";
inline constexpr const char* unknown_goal = "UnknownGoal";
inline constexpr const char* duplicate_goal = "DuplicateGoal";
inline constexpr const char* too_many_goals = "TooManyGoals";
}  // namespace error_names

}  // namespace switchboard
