// The server side of switchboard: `Server`, what generated servers call whatever the
// transport, what a goal's handler holds (`GoalControl`, `GoalContext`), and its Unix-socket
// implementation `UnixServer` (a listening socket, the
// handshake, calls dispatched to a `Service`, property values and versions, signals and property
// changes fanned out to the connections that asked for them), and `serve`, which picks the
// transport from a URL.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

#include "switchboard/codec.hpp"
#include "switchboard/error.hpp"
#include "switchboard/goal.hpp"

namespace switchboard {

/// Who is calling: over the Unix socket the peer's credentials (`SO_PEERCRED`); over MQTT its
/// client id (credentials are not known there, and stay 0).
struct CallContext {
    uid_t uid = 0;
    gid_t gid = 0;
    pid_t pid = 0;
    /// The caller's MQTT client id (docs/wire/mqtt.md, "Peers"); empty over the Unix socket or
    /// when the caller did not say.
    std::string client_id;
};

/// What a server serves, as generated code describes it.
struct ServerIdentity {
    std::string interface;
    std::string version;
    std::string hash;
    std::string instance = "default";
    /// The interface description (JSON), sent in answer to DESCRIBE.
    std::string description;
};

/// A property a server holds, with its initial value object.
struct PropertySpec {
    std::string name;
    Json initial;
    bool read_only = false;
};

/// One running goal, as the runtime gives it to the goal's handler.
///
/// Thread safety: every member function may be called from any thread at the same time; the
/// object lives until the handler returns.
class GoalControl {
public:
    virtual ~GoalControl() = default;
    /// The goal's id, which the client chose.
    [[nodiscard]] virtual const std::string& id() const = 0;
    /// Who sent the goal.
    [[nodiscard]] virtual const CallContext& client() const = 0;
    /// Sends a feedback values object to every client following the goal, in order.
    virtual void feedback(const Json& values) = 0;
    /// Whether a client asked to cancel the goal (or the server is stopping).
    [[nodiscard]] virtual bool cancel_requested() const = 0;
    /// Waits at most `timeout` for a request to cancel; returns whether one came.
    [[nodiscard]] virtual bool wait_cancel_requested(std::chrono::nanoseconds timeout) const = 0;
};

/// What a goal's handler holds: feedback of the action's `Feedback` type and cancellation.
///
/// The handler decides how a goal ends: it returns the result (`succeeded`), throws
/// `GoalCancelled` (`cancelled`, usually after `is_cancelled()`), or throws a declared error or
/// another `RemoteError` (`failed`); any other exception fails the goal with `Internal`,
/// without its text.
///
/// Thread safety: as `GoalControl`; it must not outlive the handler call it was given to.
template <class Feedback>
class GoalContext {
public:
    explicit GoalContext(GoalControl& control) noexcept : control_(control) {}

    /// The goal's id, which the client chose.
    [[nodiscard]] const std::string& id() const { return control_.id(); }
    /// Who sent the goal.
    [[nodiscard]] const CallContext& client() const { return control_.client(); }
    /// Sends `value` to every client following the goal; none is dropped on the server.
    void feedback(const Feedback& value) { control_.feedback(encode(value)); }
    /// Whether a client asked to cancel the goal (or the server is stopping).
    [[nodiscard]] bool is_cancelled() const { return control_.cancel_requested(); }
    /// Waits `timeout` unless the goal is cancelled first; returns whether it was cancelled.
    template <class Rep, class Period>
    bool wait_cancelled(std::chrono::duration<Rep, Period> timeout) const {
        return control_.wait_cancel_requested(
            std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
    }

private:
    GoalControl& control_;
};

/// Runs one accepted goal to its end and returns its result values object (see `GoalContext`
/// for how a handler ends a goal otherwise).
using GoalRunner = std::function<Json(GoalControl&)>;

/// The generated glue between the wire and a user's handler.
///
/// Thread safety: `call`, `command`, `check_property` and `accept_goal` are called from the
/// connections' threads, several at a time (one at a time per connection); the `GoalRunner`s
/// `accept_goal` returns run on threads of their own, one per goal.
class Service {
public:
    virtual ~Service() = default;
    /// Handles a call: decodes the arguments object, runs the handler and encodes its reply
    /// object. Throws `RemoteError` (declared or not), `DecodeError` for bad arguments (answered
    /// as `InvalidArguments`), or anything else (answered as `Internal`, without its message).
    virtual Json call(const std::string& method, const Json& args, const CallContext& context) = 0;
    /// Handles a command; throwing only logs.
    virtual void command(const std::string& name, const Json& args, const CallContext& context) = 0;
    /// Checks a value a client sent for `property` and returns it re-encoded; throws
    /// `DecodeError` when it does not have the property's type.
    virtual Json check_property(const std::string& property, const Json& value) = 0;
    /// Decides on a goal of `action`: decodes its arguments object, asks the handler whether to
    /// accept it and returns what runs it. Throws as `call` does to reject the goal; by default
    /// every action is unknown (`UnknownAction`).
    virtual GoalRunner accept_goal(const std::string& action, const Json& args,
                                   const CallContext& context) {
        (void)args;
        (void)context;
        throw RemoteError(ErrorCode::MethodNotFound, error_names::unknown_action,
                          "this server has no action `" + action + "`");
    }
};

/// A running server, whatever the transport: what generated servers call.
///
/// Thread safety: every member function may be called from any thread at the same time, except
/// that the destructor (and `stop`) must not run in a handler.
class Server {
public:
    virtual ~Server() = default;
    /// Sends `signal` with its values object to every subscribed client.
    virtual void emit(const std::string& signal, const Json& values) = 0;
    /// Replaces a property's value: its version grows by one and watchers get the new value.
    virtual void set_property(const std::string& name, const Json& value) = 0;
    /// A property's current value and version.
    [[nodiscard]] virtual std::pair<Json, std::uint64_t> property(const std::string& name) const = 0;
    /// Stops serving.
    virtual void stop() = 0;
    /// Where it serves: the socket path, or the broker URL.
    [[nodiscard]] virtual const std::string& address() const = 0;
};

/// Serves at `where`: `unix:///path/to.sock` or a bare path for the Unix socket,
/// `mqtt://host[:port][?instance=…&client_id=…]` for MQTT v5 (docs/wire/mqtt.md).
/// `identity.instance` is the instance unless the URL names one. `service` must outlive the
/// server. Throws as the transport's `serve` does; an unknown scheme is a `TransportError`.
std::unique_ptr<Server> serve(const std::string& where, ServerIdentity identity,
                              std::vector<PropertySpec> properties, Service& service);

class ServerCore;

/// A server listening on a Unix stream socket.
///
/// Each connection has a thread of its own that reads its frames and runs its calls one after
/// another, so calls from different connections run at the same time and a handler must be
/// thread safe. Each accepted goal runs on a thread of its own; `stop` asks every running goal
/// to cancel and waits for its handler to return. Signals and property changes are written to each subscribed connection from the
/// thread that emits them, each write bounded by a 250 ms send timeout after which that
/// connection is closed.
///
/// Thread safety: every member function may be called from any thread at the same time, except
/// that the destructor (and `stop`) must not run on a connection's thread (from a handler).
class UnixServer final : public Server {
public:
    /// Binds `path` (removing a stale socket file, refusing a live one) and starts serving.
    /// `service` must outlive the server. Throws `TransportError` when it cannot listen.
    static std::unique_ptr<UnixServer> serve(const std::string& path, ServerIdentity identity,
                                             std::vector<PropertySpec> properties,
                                             Service& service);
    ~UnixServer() override;
    UnixServer(const UnixServer&) = delete;
    UnixServer& operator=(const UnixServer&) = delete;

    /// Sends `signal` with its values object to every connection subscribed to it.
    void emit(const std::string& signal, const Json& values) override;
    /// Replaces a property's value: its version grows by one and watchers get the new value.
    void set_property(const std::string& name, const Json& value) override;
    /// A property's current value and version.
    [[nodiscard]] std::pair<Json, std::uint64_t> property(const std::string& name) const override;
    /// Stops serving: closes every connection, waits for their threads and removes the socket.
    void stop() override;
    /// The socket's path.
    [[nodiscard]] const std::string& path() const;
    /// The socket's path.
    [[nodiscard]] const std::string& address() const override { return path(); }

private:
    explicit UnixServer(std::unique_ptr<ServerCore> core);
    std::unique_ptr<ServerCore> core_;
};

/// Where the server of `interface` and `instance` listens by default (docs/wire/unix.md §1):
/// `$XDG_RUNTIME_DIR/switchboard/<interface>/<instance>.sock`, `/run/switchboard/…` or
/// `$TMPDIR/switchboard-<uid>/…`. With `create`, the directories are made with their modes.
std::string default_socket_path(const std::string& interface, const std::string& instance,
                                bool create);

}  // namespace switchboard
