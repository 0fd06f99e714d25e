// The client side of switchboard: `ClientConnection`, what generated clients call whatever the
// transport, its Unix-socket implementation `UnixClient` (one connection per client, calls
// matched to replies by correlation id, deadlines, signal subscriptions, property watches and
// goals routed by their ids), `Goal`, a goal the client sent, and `connect`, which picks the
// transport from a URL.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "switchboard/codec.hpp"
#include "switchboard/error.hpp"
#include "switchboard/goal.hpp"

namespace switchboard {

/// Who the client says it is in its HELLO.
struct ClientIdentity {
    std::string interface;
    std::string version;
    /// The description hash the client was generated from; `std::nullopt` accepts any server.
    std::optional<std::string> hash;
    std::string instance = "default";
    /// The interface description (JSON) the client was generated from, sent in the HELLO so that
    /// a server of another hash can decide member by member (docs/wire/unix.md, section 4);
    /// empty sends none, and so does a HELLO that would pass 64 KiB with it.
    std::string description;
};

/// How a client behaves.
struct ClientOptions {
    /// The deadline of a call whose method declares none, and of property requests.
    std::chrono::milliseconds call_timeout{10000};
    /// How long connecting and the handshake may take.
    std::chrono::milliseconds connect_timeout{5000};
};

/// How one request ended: a value (with its property version, if any) or an error.
// clang-tidy sees nlohmann::json's noexcept special members call its (throwing) invariant
// check; they cannot throw for a valid json value.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct Outcome {
    Json value;
    std::uint64_t version = 0;
    /// Set when the request failed: a `RemoteError`, `TimeoutError` or `TransportError`.
    std::exception_ptr error;
};

/// Called once with the outcome of a request, on the client's reader thread.
using Completion = std::function<void(Outcome)>;

/// What a `Subscription` ends: the client that delivers its callbacks.
class ListenerOwner {
public:
    virtual ~ListenerOwner() = default;
    /// Removes the listener `token` of the signal (or, with `watch`, the property) `name`.
    virtual void remove_listener(bool watch, const std::string& name, std::uint64_t token) = 0;
};

/// A signal subscription or property watch; it ends when this object is destroyed (or `reset`).
///
/// Thread safety: one `Subscription` may be used by one thread at a time; it may outlive its
/// client (ending it then does nothing).
class Subscription {
public:
    Subscription() = default;
    Subscription(std::weak_ptr<ListenerOwner> core, bool watch, std::string name, std::uint64_t token)
        : core_(std::move(core)), watch_(watch), name_(std::move(name)), token_(token) {}
    Subscription(Subscription&& other) noexcept { *this = std::move(other); }
    Subscription& operator=(Subscription&& other) noexcept;
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription() { reset(); }

    /// Ends the subscription now.
    void reset() noexcept;

private:
    std::weak_ptr<ListenerOwner> core_;
    bool watch_ = false;
    std::string name_;
    std::uint64_t token_ = 0;
};

/// What a connection does with the events of one goal it sent. Each runs on the client's
/// thread, one at a time, in the order the server sent them.
struct GoalEvents {
    /// Every feedback values object, the first one included.
    std::function<void(const Json&)> feedback;
    /// Every change of status, the end status included (before `finished`).
    std::function<void(GoalStatus)> status;
    /// Called once when the goal has ended, with the result values object, or the error:
    /// `GoalCancelled`, a `RemoteError`, or `TransportError` when the connection was lost.
    Completion finished;
};

/// What cancels the goals a connection sent; `Goal`s hold it weakly.
class GoalCanceller {
public:
    virtual ~GoalCanceller() = default;
    /// Asks the server to cancel goal `goal` of `action`; `done` gets the goal's state object.
    virtual void cancel_goal(const std::string& action, const std::string& goal,
                             Completion done) = 0;
};

/// A connection to one server, whatever the transport: what generated clients call.
///
/// Every request function returns at once and calls its `Completion` later, exactly once, on a
/// thread of the client (or on the calling thread when the client is not connected).
///
/// A server of another version may lack a member of the client's interface (the handshake
/// compares the two descriptions, docs/interface-format.md "Compatibility between versions"):
/// each use of one fails at once, before anything is sent, with the `RemoteError` the server
/// would answer (`UnknownMethod`, `UnknownSignal`, `UnknownProperty`, `UnknownCommand` or
/// `UnknownAction`, code 9), through the `Completion` on the calling thread, or thrown by
/// `send_command`, `subscribe` and `watch`.
///
/// Thread safety: every member function may be called from any thread at the same time.
class ClientConnection {
public:
    virtual ~ClientConnection() = default;
    /// Calls `method` with its arguments object.
    virtual void call(const std::string& method, Json args, std::chrono::milliseconds timeout,
                      Completion done) = 0;
    /// Reads a property's value and version.
    virtual void get_property(const std::string& name, Completion done) = 0;
    /// Replaces a property's value; the version sent is the last one this client saw (after
    /// reading the property first if it has seen none).
    virtual void set_property(const std::string& name, Json value, Completion done) = 0;
    /// Sends a command; it is never answered. Throws `TransportError` when not connected, and
    /// `RemoteError` (`UnknownCommand`) when the server lacks it.
    virtual void send_command(const std::string& name, Json args) = 0;
    /// Calls `on_signal` with the values object of every `signal` the server emits.
    virtual Subscription subscribe(const std::string& signal,
                                   std::function<void(const Json&)> on_signal) = 0;
    /// Calls `on_value` with the current value of `property` and then every new one.
    virtual Subscription watch(const std::string& property,
                               std::function<void(const Json&, std::uint64_t)> on_value) = 0;
    /// Sends goal `goal` of `action` with its arguments object. `events` is in place before
    /// the goal is sent, so no event is lost; `accepted` gets the goal's state once the server
    /// accepted it, or the refusal (and then `events` is never called).
    virtual void send_goal(const std::string& action, const std::string& goal, Json args,
                           GoalEvents events, Completion accepted) = 0;
    /// What cancels this connection's goals.
    [[nodiscard]] virtual std::weak_ptr<GoalCanceller> goal_canceller() = 0;
    /// Whether the connection (and, where the transport can tell, the server) is up.
    [[nodiscard]] virtual bool connected() const = 0;
    /// The options the client was made with.
    [[nodiscard]] virtual const ClientOptions& options() const = 0;
};

/// Connects to the server at `where`: `unix:///path/to.sock` or a bare path for the Unix
/// socket, `mqtt://host[:port][?instance=…&client_id=…]` for MQTT v5 (docs/wire/mqtt.md).
/// `identity.instance` is the instance unless the URL names one. Throws as the transport's
/// `connect` does; an unknown scheme is a `TransportError`.
std::unique_ptr<ClientConnection> connect(const std::string& where, ClientIdentity identity,
                                    ClientOptions options = {});

class ClientCore;

/// A connection to a server over a Unix stream socket.
///
/// Every request function returns at once and calls its `Completion` later, exactly once, on the
/// client's reader thread (or on the calling thread when the client is not connected). Signal
/// and watch callbacks run on the reader thread too, one at a time, in the order the frames
/// came: they must not block, and must not wait on a future of this client's requests (that
/// would wait for the thread that has to complete it).
///
/// Thread safety: every member function may be called from any thread at the same time. The
/// destructor closes the connection, fails the requests in flight with `TransportError` and
/// joins the reader thread; it must not run on the reader thread (from a callback).
///
/// A lost connection is not re-established in this version: requests in flight fail with
/// `TransportError`, later ones fail at once, and subscriptions end.
class UnixClient final : public ClientConnection {
public:
    /// Connects to the server listening at `path` and does the handshake.
    ///
    /// Throws `TransportError` when the socket cannot be reached, and `RemoteError` when the
    /// server refuses the handshake (for example `IncompatibleInterface`). A server of another
    /// hash says in its WELCOME what it serves, and this client learns from it which members
    /// the server lacks.
    static std::unique_ptr<UnixClient> connect(const std::string& path, ClientIdentity identity,
                                               ClientOptions options = {});
    ~UnixClient() override;
    UnixClient(const UnixClient&) = delete;
    UnixClient& operator=(const UnixClient&) = delete;

    /// Calls `method` with its arguments object.
    void call(const std::string& method, Json args, std::chrono::milliseconds timeout,
              Completion done) override;
    /// Reads a property's value and version.
    void get_property(const std::string& name, Completion done) override;
    /// Replaces a property's value; the version sent is the last one this client saw (after
    /// reading the property first if it has seen none).
    void set_property(const std::string& name, Json value, Completion done) override;
    /// Sends a command; it is never answered.
    void send_command(const std::string& name, Json args) override;
    /// Asks the server for its interface description.
    void describe(Completion done);
    /// Calls `on_signal` with the values object of every `signal` the server emits.
    Subscription subscribe(const std::string& signal,
                           std::function<void(const Json&)> on_signal) override;
    /// Calls `on_value` with the current value of `property` and then every new one.
    Subscription watch(const std::string& property,
                       std::function<void(const Json&, std::uint64_t)> on_value) override;
    /// Sends a goal; its events are routed by its id from before it is sent.
    void send_goal(const std::string& action, const std::string& goal, Json args,
                   GoalEvents events, Completion accepted) override;
    /// What cancels this connection's goals.
    [[nodiscard]] std::weak_ptr<GoalCanceller> goal_canceller() override;
    /// Whether the connection is still up.
    [[nodiscard]] bool connected() const override;
    /// What the server said about itself in its WELCOME.
    [[nodiscard]] const Json& server_identity() const;
    /// The options the client was made with.
    [[nodiscard]] const ClientOptions& options() const override;

private:
    explicit UnixClient(std::shared_ptr<ClientCore> core) : core_(std::move(core)) {}
    std::shared_ptr<ClientCore> core_;
};

/// Completes `promise` from `outcome`: a `RemoteError` is first offered to `raise_declared`,
/// which throws the interface's declared error of that name, if any; a value is decoded with
/// `decode`. Generated clients use it to turn a `Completion` into a `std::future`.
template <class T, class Decode>
void settle(std::promise<T>& promise, Outcome outcome, void (*raise_declared)(const RemoteError&),
            Decode decode) {
    try {
        if (outcome.error) {
            try {
                std::rethrow_exception(outcome.error);
            } catch (const RemoteError& error) {
                if (raise_declared != nullptr) raise_declared(error);
                throw;
            }
        }
        if constexpr (std::is_void_v<T>) {
            decode(outcome);
            promise.set_value();
        } else {
            promise.set_value(decode(outcome));
        }
    } catch (...) {
        promise.set_exception(std::current_exception());
    }
}

/// A goal a client sent and the server accepted: its id, its last status, a way to cancel it
/// and its result.
///
/// Thread safety: every member function may be called from any thread at the same time; a
/// `Goal` is a cheap copy, and copies share everything. It may outlive its client.
template <class Result>
class Goal {
public:
    Goal(std::string action, std::string id, std::shared_ptr<std::atomic<GoalStatus>> status,
         std::weak_ptr<GoalCanceller> canceller, std::shared_future<Result> result)
        : action_(std::move(action)), id_(std::move(id)), status_(std::move(status)),
          canceller_(std::move(canceller)), result_(std::move(result)) {}

    /// The goal's id.
    [[nodiscard]] const std::string& id() const noexcept { return id_; }
    /// The last status the client heard of.
    [[nodiscard]] GoalStatus status() const noexcept { return status_->load(); }
    /// Asks the server to cancel the goal; the future gives the goal's status then (usually
    /// `Canceling`, or the end status of a goal that had ended). How the goal ends still comes
    /// through `result()`: usually `GoalCancelled`, but a handler may finish anyway.
    [[nodiscard]] std::future<GoalStatus> cancel() const {
        auto promise = std::make_shared<std::promise<GoalStatus>>();
        auto future = promise->get_future();
        auto canceller = canceller_.lock();
        if (!canceller) {
            promise->set_exception(
                std::make_exception_ptr(TransportError("the client is closed")));
            return future;
        }
        canceller->cancel_goal(action_, id_, [promise](const Outcome& outcome) {
            try {
                if (outcome.error) std::rethrow_exception(outcome.error);
                const auto status = outcome.value.is_object()
                                        ? parse_goal_status(outcome.value.value("status", ""))
                                        : std::nullopt;
                if (!status) throw DecodeError("status", "not a goal status");
                promise->set_value(*status);
            } catch (...) {
                promise->set_exception(std::current_exception());
            }
        });
        return future;
    }
    /// The goal's result: `get()` returns it once the goal has succeeded, or throws
    /// `GoalCancelled`, the action's declared error, another `RemoteError`, or
    /// `TransportError` when the connection was lost first.
    [[nodiscard]] const std::shared_future<Result>& result() const noexcept { return result_; }

private:
    std::string action_;
    std::string id_;
    std::shared_ptr<std::atomic<GoalStatus>> status_;
    std::weak_ptr<GoalCanceller> canceller_;
    std::shared_future<Result> result_;
};

/// Sends a goal of `action` on `connection` with a fresh id: `on_feedback` (if set) gets each
/// feedback decoded as `Feedback`, the returned future the `Goal` once the server accepted it,
/// or the refusal (a declared error through `raise_declared`, or another `RemoteError`).
/// `decode_result` turns the result values object into a `Result`. Generated clients use it.
template <class Result, class Feedback, class DecodeResult>
std::future<Goal<Result>> send_goal(ClientConnection& connection, const std::string& action,
                                    Json&& args, std::function<void(const Feedback&)> on_feedback,
                                    void (*raise_declared)(const RemoteError&),
                                    DecodeResult decode_result) {
    auto id = random_goal_id();
    auto status = std::make_shared<std::atomic<GoalStatus>>(GoalStatus::Accepted);
    auto result = std::make_shared<std::promise<Result>>();
    std::shared_future<Result> result_future = result->get_future().share();
    auto accepted = std::make_shared<std::promise<Goal<Result>>>();
    auto future = accepted->get_future();
    GoalEvents events;
    if (on_feedback) {
        events.feedback = [action, on_feedback = std::move(on_feedback)](const Json& values) {
            on_feedback(decode<Feedback>(values, action));
        };
    }
    events.status = [status](GoalStatus now) { status->store(now); };
    events.finished = [result, raise_declared,
                       decode_result = std::move(decode_result)](Outcome outcome) {
        settle(*result, std::move(outcome), raise_declared,
               [&decode_result](const Outcome& end) { return decode_result(end.value); });
    };
    connection.send_goal(
        action, id, std::move(args), std::move(events),
        [accepted, action, id, status, canceller = connection.goal_canceller(), raise_declared,
         result_future](Outcome outcome) {
            settle(*accepted, std::move(outcome), raise_declared, [&](const Outcome&) {
                return Goal<Result>(action, id, status, canceller, result_future);
            });
        });
    return future;
}

}  // namespace switchboard
