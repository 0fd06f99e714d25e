// The server side of the Unix-socket wire: it owns a listening socket, does the handshake,
// dispatches calls to a `Service`, keeps property values and versions, and fans signals and
// property changes out to the connections that asked for them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

#include "switchboard/codec.hpp"
#include "switchboard/error.hpp"

namespace switchboard {

/// Who is calling: the peer's credentials (`SO_PEERCRED`).
struct CallContext {
    uid_t uid = 0;
    gid_t gid = 0;
    pid_t pid = 0;
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

/// The generated glue between the wire and a user's handler.
///
/// Thread safety: `call`, `command` and `check_property` are called from the connections'
/// threads, several at a time (one at a time per connection).
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
};

class ServerCore;

/// A server listening on a Unix stream socket.
///
/// Each connection has a thread of its own that reads its frames and runs its calls one after
/// another, so calls from different connections run at the same time and a handler must be
/// thread safe. Signals and property changes are written to each subscribed connection from the
/// thread that emits them, each write bounded by a 250 ms send timeout after which that
/// connection is closed.
///
/// Thread safety: every member function may be called from any thread at the same time, except
/// that the destructor (and `stop`) must not run on a connection's thread (from a handler).
class UnixServer {
public:
    /// Binds `path` (removing a stale socket file, refusing a live one) and starts serving.
    /// `service` must outlive the server. Throws `TransportError` when it cannot listen.
    static std::unique_ptr<UnixServer> serve(const std::string& path, ServerIdentity identity,
                                             std::vector<PropertySpec> properties,
                                             Service& service);
    ~UnixServer();
    UnixServer(const UnixServer&) = delete;
    UnixServer& operator=(const UnixServer&) = delete;

    /// Sends `signal` with its values object to every connection subscribed to it.
    void emit(const std::string& signal, const Json& values);
    /// Replaces a property's value: its version grows by one and watchers get the new value.
    void set_property(const std::string& name, const Json& value);
    /// A property's current value and version.
    std::pair<Json, std::uint64_t> property(const std::string& name) const;
    /// Stops serving: closes every connection, waits for their threads and removes the socket.
    void stop();
    /// The socket's path.
    const std::string& path() const;

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
