// The requests a client has sent and not yet had answered, for every transport's client: each
// under an id of its own with its deadline and completion, until its answer takes it, its
// deadline passes or the connection fails them all. Private to the runtime (not installed).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "switchboard/client.hpp"

namespace switchboard::detail {

/// The table of a client's requests in flight.
///
/// Thread safety: none of its own. Its owner guards it with the same lock that guards whether
/// the connection is up, so a request is never registered after the connection has failed the
/// others; completions are called by the owner after releasing that lock, never from here.
class PendingRequests {
public:
    using Clock = std::chrono::steady_clock;

    /// One request in flight.
    struct Request {
        Clock::time_point deadline;
        Completion done;
        /// The property a property request is about (empty for a call).
        std::string property;
        /// A property read completed by the property's next value rather than by an answer.
        bool read = false;
    };

    /// Registers `request` under a new id and returns the id.
    std::uint64_t add(Request request) {
        const std::uint64_t id = next_id_++;
        requests_.emplace(id, std::move(request));
        return id;
    }

    /// Takes the request `id` out of the table, if it is still in it.
    std::optional<Request> take(std::uint64_t id) {
        auto found = requests_.find(id);
        if (found == requests_.end()) return std::nullopt;
        Request request = std::move(found->second);
        requests_.erase(found);
        return request;
    }

    /// Takes out every request for which `matches(request)` holds.
    template <class Predicate>
    std::vector<Request> take_if(Predicate matches) {
        std::vector<Request> taken;
        for (auto it = requests_.begin(); it != requests_.end();) {
            if (matches(it->second)) {
                taken.push_back(std::move(it->second));
                it = requests_.erase(it);
            } else {
                ++it;
            }
        }
        return taken;
    }

    /// Takes out every request whose deadline is `now` or earlier.
    std::vector<Request> take_overdue(Clock::time_point now) {
        return take_if([now](const Request& request) { return request.deadline <= now; });
    }

    /// Takes out every request (the connection failed them all).
    std::vector<Request> take_all() {
        std::vector<Request> taken;
        taken.reserve(requests_.size());
        for (auto& [id, request] : requests_) taken.push_back(std::move(request));
        requests_.clear();
        return taken;
    }

    /// The earliest deadline in the table, `Clock::time_point::max()` when it is empty.
    [[nodiscard]] Clock::time_point earliest_deadline() const {
        auto earliest = Clock::time_point::max();
        for (const auto& [id, request] : requests_) earliest = std::min(earliest, request.deadline);
        return earliest;
    }

private:
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, Request> requests_;
};

/// Completes every request of `requests` with an error of its own, `make_error()`.
template <class MakeError>
void fail_requests(std::vector<PendingRequests::Request>& requests, MakeError make_error) {
    for (auto& request : requests) {
        Outcome outcome;
        outcome.error = make_error();
        request.done(std::move(outcome));
    }
}

}  // namespace switchboard::detail
