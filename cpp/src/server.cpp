// The server of the Unix-socket wire: the listening socket, the handshake, one reader thread per
// connection, property values with versions, signal and property fan-out, and goal requests
// (run by the transport-independent `GoalBook`) with their events written to the connections
// following each goal.
#include "switchboard/server.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include "compat.hpp"
#include "goals.hpp"
#include "switchboard/wire.hpp"

namespace switchboard {

namespace {

using wire::Kind;

std::uint8_t kind(Kind k) { return static_cast<std::uint8_t>(k); }

Json error_body(const std::string& message, const std::optional<Json>& details) {
    Json body = {{"message", message}};
    if (details) body["details"] = *details;
    return body;
}

sockaddr_un socket_address(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) {
        throw TransportError("socket path is longer than 107 bytes: " + path);
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    return address;
}

/// Creates `dir` with `mode` if missing (the parent must exist).
void make_dir(const std::string& dir, mode_t mode) {
    if (::mkdir(dir.c_str(), mode) == 0) {
        ::chmod(dir.c_str(), mode);
    } else if (errno != EEXIST) {
        throw TransportError("cannot create " + dir + ": " + std::generic_category().message(errno));
    }
}

void make_parents(const std::string& path) {
    for (std::size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1)) {
        const std::string dir = path.substr(0, at);
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
            throw TransportError("cannot create " + dir + ": " + std::generic_category().message(errno));
        }
    }
}

void check_component(const std::string& value, const char* what) {
    if (value.empty() || value == "." || value == ".." ||
        value.find_first_of(std::string("/\0", 2)) != std::string::npos) {
        throw TransportError(std::string("invalid ") + what + " for a socket path: \"" + value +
                             "\"");
    }
}

}  // namespace

std::string default_socket_path(const std::string& interface, const std::string& instance,
                                bool create) {
    check_component(interface, "interface name");
    check_component(instance, "instance id");
    std::string dir;
    mode_t mode = 0700;
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    if (runtime != nullptr && runtime[0] == '/') {
        if (create) make_dir(std::string(runtime) + "/switchboard", 0700);
        dir = std::string(runtime) + "/switchboard";
    } else if (::geteuid() == 0 || ::access("/run/switchboard", W_OK) == 0) {
        dir = "/run/switchboard";
        mode = 0755;
        if (create) make_dir(dir, mode);
    } else {
        const char* tmp = std::getenv("TMPDIR");
        dir = std::string(tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp") + "/switchboard-" +
              std::to_string(::getuid());
        mode = 0711;
        if (create) {
            make_dir(dir, mode);
            struct stat info {};
            if (::lstat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) ||
                info.st_uid != ::getuid() || (info.st_mode & 022) != 0) {
                throw TransportError("refusing " + dir +
                                     ": it is not a directory this user owns and only it can write");
            }
        }
    }
    const std::string interface_dir = dir + "/" + interface;
    if (create) make_dir(interface_dir, mode);
    return interface_dir + "/" + instance + ".sock";
}

// Private to this file: a name like `Connection` with external linkage would clash with any
// other definition of it in the program (an ODR violation, seen as a crash).
namespace {

/// One accepted connection.
struct Connection {
    int fd = -1;
    CallContext peer;
    std::mutex write;
    /// Guarded by the server's `state_` mutex.
    std::set<std::string> signals;
    /// Guarded by the server's `properties_` mutex.
    std::set<std::string> watches;
    /// Where the goals this connection follows send their events.
    std::shared_ptr<detail::GoalFollower> follower;

    void send(const wire::Frame& frame) {
        std::string bytes;
        try {
            bytes = wire::encode(frame);
        } catch (const TransportError&) {
            ::shutdown(fd, SHUT_RDWR);
            return;
        }
        std::lock_guard lock(write);
        if (!wire::write_all(fd, bytes)) ::shutdown(fd, SHUT_RDWR);
    }
};

/// Sends a goal's events to one connection; it holds the connection weakly.
class ConnectionFollower final : public detail::GoalFollower {
public:
    explicit ConnectionFollower(std::weak_ptr<Connection> connection)
        : connection_(std::move(connection)) {}

    void goal_event(detail::GoalEventKind event, const std::string& action, const Json& payload,
                    ErrorCode code) override {
        const auto connection = connection_.lock();
        if (!connection) return;
        wire::Frame frame;
        switch (event) {
            case detail::GoalEventKind::Status:
                frame.kind = kind(Kind::GoalStatus);
                break;
            case detail::GoalEventKind::Feedback:
                frame.kind = kind(Kind::GoalFeedback);
                break;
            case detail::GoalEventKind::Finished:
                frame.kind = kind(Kind::GoalFinished);
                break;
        }
        frame.code = static_cast<std::uint8_t>(code);
        frame.name = action;
        frame.payload = payload.dump();
        connection->send(frame);
    }

private:
    std::weak_ptr<Connection> connection_;
};

struct PropertyState {
    Json value;
    std::uint64_t version = 1;
    bool read_only = false;
};

}  // namespace

class ServerCore {
public:
    ServerCore(std::string path, ServerIdentity identity, std::vector<PropertySpec> properties,
               Service& service)
        : path_(std::move(path)), identity_(std::move(identity)), service_(service),
          stop_event_(::eventfd(0, EFD_CLOEXEC)), goals_(service) {
        for (auto& spec : properties) {
            properties_map_.emplace(spec.name,
                                    PropertyState{std::move(spec.initial), 1, spec.read_only});
        }
        welcome_.interface = identity_.interface;
        welcome_.version = identity_.version;
        if (!identity_.hash.empty()) welcome_.hash = identity_.hash;
        welcome_.description = Json::parse(identity_.description, nullptr, false);
        if (welcome_.description.is_discarded()) welcome_.description = Json();
    }

    ~ServerCore() {
        stop();
        if (stop_event_ >= 0) ::close(stop_event_);
    }
    ServerCore(const ServerCore&) = delete;
    ServerCore& operator=(const ServerCore&) = delete;

    void listen() {
        make_parents(path_);
        const auto address = socket_address(path_);
        struct stat existing {};
        if (::lstat(path_.c_str(), &existing) == 0) {
            if (!S_ISSOCK(existing.st_mode)) {
                throw TransportError(path_ + " exists and is not a socket; leaving it alone");
            }
            const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&address),
                                     sizeof address);
            const int why = errno;
            ::close(probe);
            if (rc == 0 || why != ECONNREFUSED) {
                throw TransportError("another server is already listening on " + path_);
            }
            ::unlink(path_.c_str());
        }
        listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listener_ < 0) throw TransportError(std::string("socket: ") + std::generic_category().message(errno));
        if (::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
            const std::string why = std::generic_category().message(errno);
            ::close(listener_);
            listener_ = -1;
            throw TransportError("cannot bind " + path_ + ": " + why);
        }
        ::chmod(path_.c_str(), 0660);
        struct stat bound {};
        ::lstat(path_.c_str(), &bound);
        bound_device_ = bound.st_dev;
        bound_inode_ = bound.st_ino;
        if (::listen(listener_, 128) != 0) {
            const std::string why = std::generic_category().message(errno);
            ::close(listener_);
            listener_ = -1;
            throw TransportError("cannot listen on " + path_ + ": " + why);
        }
        acceptor_ = std::thread([this] { accept_loop(); });
    }

    void stop() {
        if (stopped_.exchange(true)) return;
        // Goals end first, so that their followers still hear how they ended.
        goals_.stop();
        const std::uint64_t one = 1;
        [[maybe_unused]] auto written = ::write(stop_event_, &one, sizeof one);
        if (acceptor_.joinable()) acceptor_.join();
        {
            std::lock_guard lock(state_);
            for (const auto& connection : connections_) ::shutdown(connection->fd, SHUT_RDWR);
        }
        std::unique_lock lock(state_);
        all_ended_.wait(lock, [this] { return running_ == 0; });
        lock.unlock();
        if (listener_ >= 0) {
            ::close(listener_);
            listener_ = -1;
            struct stat now {};
            if (::lstat(path_.c_str(), &now) == 0 && now.st_dev == bound_device_ &&
                now.st_ino == bound_inode_) {
                ::unlink(path_.c_str());
            }
        }
    }

    void emit(const std::string& signal, const Json& values) {
        wire::Frame frame;
        frame.kind = kind(Kind::Signal);
        frame.name = signal;
        frame.payload = values.dump();
        std::vector<std::shared_ptr<Connection>> targets;
        {
            std::lock_guard lock(state_);
            for (const auto& connection : connections_) {
                if (connection->signals.contains(signal)) targets.push_back(connection);
            }
        }
        for (const auto& connection : targets) connection->send(frame);
    }

    void set_property(const std::string& name, const Json& value) {
        std::lock_guard lock(properties_);
        auto found = properties_map_.find(name);
        if (found == properties_map_.end()) {
            throw std::invalid_argument("no property named " + name);
        }
        apply(found->first, found->second, value);
    }

    std::pair<Json, std::uint64_t> property(const std::string& name) const {
        std::lock_guard lock(properties_);
        auto found = properties_map_.find(name);
        if (found == properties_map_.end()) {
            throw std::invalid_argument("no property named " + name);
        }
        return {found->second.value, found->second.version};
    }

    const std::string& path() const { return path_; }

private:
    /// Sets a property and tells its watchers; the caller holds `properties_`, so watchers see
    /// versions in order.
    void apply(const std::string& name, PropertyState& state, const Json& value) {
        state.value = value;
        state.version += 1;
        wire::Frame frame;
        frame.kind = kind(Kind::PropertyValue);
        frame.name = name;
        frame.version = state.version;
        frame.payload = value.dump();
        std::vector<std::shared_ptr<Connection>> targets;
        {
            std::lock_guard lock(state_);
            for (const auto& connection : connections_) {
                if (connection->watches.contains(name)) targets.push_back(connection);
            }
        }
        for (const auto& connection : targets) connection->send(frame);
    }

    void accept_loop() {
        std::array<pollfd, 2> fds{pollfd{listener_, POLLIN, 0}, pollfd{stop_event_, POLLIN, 0}};
        while (true) {
            fds[0].revents = fds[1].revents = 0;
            if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
            if (fds[1].revents != 0) return;
            if ((fds[0].revents & POLLIN) == 0) continue;
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            auto connection = std::make_shared<Connection>();
            connection->fd = fd;
            connection->follower =
                std::make_shared<ConnectionFollower>(std::weak_ptr<Connection>(connection));
            ucred credentials{};
            socklen_t size = sizeof credentials;
            if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) == 0) {
                connection->peer = CallContext{credentials.uid, credentials.gid, credentials.pid, {}};
            }
            timeval send_limit{0, 250000};
            ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_limit, sizeof send_limit);
            std::lock_guard lock(state_);
            if (stopped_) {
                ::close(fd);
                return;
            }
            ++running_;
            std::thread([this, connection] { serve(connection); }).detach();
        }
    }

    /// Runs one connection from its HELLO to its end.
    void serve(const std::shared_ptr<Connection>& connection) {
        if (handshake(*connection)) {
            {
                std::lock_guard lock(state_);
                connections_.insert(connection);
            }
            read_loop(*connection);
            goals_.follower_gone(connection->follower.get());
            {
                std::lock_guard lock(state_);
                connections_.erase(connection);
            }
            std::lock_guard lock(properties_);
            connection->watches.clear();
        }
        ::close(connection->fd);
        std::lock_guard lock(state_);
        --running_;
        all_ended_.notify_all();
    }

    void refuse(Connection& connection, ErrorCode code, const std::string& name,
                const std::string& message) {
        wire::Frame frame;
        frame.kind = kind(Kind::Refused);
        frame.code = static_cast<std::uint8_t>(code);
        frame.name = name;
        frame.payload = Json{{"message", message}}.dump();
        connection.send(frame);
    }

    bool handshake(Connection& connection) {
        timeval limit{5, 0};
        ::setsockopt(connection.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        auto hello = wire::read_frame(connection.fd, wire::kMaxHello);
        if (hello.status == wire::ReadResult::Status::Closed) return false;
        Json body;
        if (hello.status == wire::ReadResult::Status::Ok) {
            body = Json::parse(hello.frame.payload, nullptr, false);
        }
        if (hello.status != wire::ReadResult::Status::Ok || hello.frame.kind != kind(Kind::Hello) ||
            !body.is_object()) {
            refuse(connection, ErrorCode::PayloadError, "UnsupportedProtocol",
                   "the first frame must be a HELLO with a JSON object");
            return false;
        }
        if (body.value("protocol", Json()) != Json(wire::kProtocol)) {
            refuse(connection, ErrorCode::PayloadError, "UnsupportedProtocol",
                   "this server speaks protocol 1 only");
            return false;
        }
        // A client of another hash is compared member by member when both sides have a
        // description, and refused with the first change that breaks it.
        const auto client = detail::Peer::from_hello(body);
        try {
            detail::check(client, welcome_);
        } catch (const detail::Incompatible& error) {
            refuse(connection, ErrorCode::PayloadError, "IncompatibleInterface", error.what());
            return false;
        }
        Json answer = {{"protocol", wire::kProtocol},
                       {"interface", identity_.interface},
                       {"version", identity_.version},
                       {"hash", identity_.hash},
                       {"instance", identity_.instance}};
        // Only a client of another hash compares members, so only it gets the description.
        if (client.hash && client.hash != welcome_.hash && !welcome_.description.is_null()) {
            answer["description"] = welcome_.description;
        }
        wire::Frame welcome;
        welcome.kind = kind(Kind::Welcome);
        welcome.name = identity_.interface;
        welcome.payload = answer.dump();
        connection.send(welcome);
        timeval none{0, 0};
        ::setsockopt(connection.fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
        return true;
    }

    void read_loop(Connection& connection) {
        while (true) {
            auto result = wire::read_frame(connection.fd, wire::kMaxFrame);
            using Status = wire::ReadResult::Status;
            if (result.status == Status::Closed) return;
            if (result.status == Status::TooLong) {
                protocol_error(connection, 0, result.problem);
                return;
            }
            if (result.status == Status::Malformed) {
                protocol_error(connection, result.frame.id, result.problem);
                continue;
            }
            handle(connection, result.frame);
        }
    }

    void protocol_error(Connection& connection, std::uint64_t id, const std::string& message,
                        ErrorCode code = ErrorCode::PayloadError) {
        wire::Frame frame;
        frame.kind = kind(Kind::Error);
        frame.code = static_cast<std::uint8_t>(code);
        frame.id = id;
        frame.name = error_names::protocol_error;
        frame.payload = Json{{"message", message}}.dump();
        connection.send(frame);
    }

    void handle(Connection& connection, const wire::Frame& frame) {
        switch (static_cast<Kind>(frame.kind)) {
            case Kind::Call:
                return handle_call(connection, frame);
            case Kind::GetProperty:
            case Kind::SetProperty:
                return handle_property(connection, frame);
            case Kind::Watch: {
                std::lock_guard lock(properties_);
                auto found = properties_map_.find(frame.name);
                if (found == properties_map_.end()) return;
                connection.watches.insert(frame.name);
                wire::Frame value;
                value.kind = kind(Kind::PropertyValue);
                value.name = frame.name;
                value.version = found->second.version;
                value.payload = found->second.value.dump();
                connection.send(value);
                return;
            }
            case Kind::Unwatch: {
                std::lock_guard lock(properties_);
                connection.watches.erase(frame.name);
                return;
            }
            case Kind::Subscribe: {
                std::lock_guard lock(state_);
                connection.signals.insert(frame.name);
                return;
            }
            case Kind::Unsubscribe: {
                std::lock_guard lock(state_);
                connection.signals.erase(frame.name);
                return;
            }
            case Kind::Command: {
                try {
                    const Json args = Json::parse(frame.payload, nullptr, false);
                    if (args.is_object()) service_.command(frame.name, args, connection.peer);
                } catch (...) {
                    // Commands are never answered, not even on failure.
                }
                return;
            }
            case Kind::Describe: {
                wire::Frame answer;
                answer.kind = kind(Kind::Description);
                answer.id = frame.id;
                answer.payload = identity_.description;
                connection.send(answer);
                return;
            }
            case Kind::SendGoal:
            case Kind::CancelGoal:
            case Kind::AttachGoal:
                return handle_goal(connection, frame);
            case Kind::Error:
                return;  // a client's report; nothing to do
            case Kind::Hello:
                return protocol_error(connection, frame.id, "HELLO after the handshake");
            default:
                return protocol_error(connection, frame.id,
                                      "unknown or unexpected frame kind " +
                                          std::to_string(frame.kind));
        }
    }

    void reply(Connection& connection, const wire::Frame& request, ErrorCode code,
               const std::string& name, const Json& body) {
        wire::Frame answer;
        answer.kind = kind(Kind::Reply);
        answer.id = request.id;
        answer.code = static_cast<std::uint8_t>(code);
        answer.name = name;
        answer.payload = body.dump();
        connection.send(answer);
    }

    void handle_call(Connection& connection, const wire::Frame& frame) {
        const Json args = Json::parse(frame.payload, nullptr, false);
        if (!args.is_object()) {
            reply(connection, frame, ErrorCode::ServerDeserializationError,
                  error_names::invalid_arguments,
                  error_body("the arguments must be a JSON object", std::nullopt));
            return;
        }
        try {
            const Json result = service_.call(frame.name, args, connection.peer);
            reply(connection, frame, ErrorCode::Success, "", result);
        } catch (const RemoteError& error) {
            reply(connection, frame, error.code(), error.name(),
                  error_body(error.message(), error.details()));
        } catch (const DecodeError& error) {
            reply(connection, frame, ErrorCode::ServerDeserializationError,
                  error_names::invalid_arguments, error_body(error.what(), std::nullopt));
        } catch (...) {
            reply(connection, frame, ErrorCode::ServerError, error_names::internal,
                  error_body(error_names::internal_message, std::nullopt));
        }
    }

    /// SEND_GOAL, CANCEL_GOAL and ATTACH_GOAL: answered with GOAL_REPLY, or with ERROR when the
    /// request names no valid goal id.
    void handle_goal(Connection& connection, const wire::Frame& frame) {
        const Json body = Json::parse(frame.payload, nullptr, false);
        auto answer = [&](const detail::GoalAnswer& goal_answer) {
            if (goal_answer.malformed) {
                return protocol_error(connection, frame.id,
                                      goal_answer.payload.value("message", std::string()));
            }
            wire::Frame reply;
            reply.kind = kind(Kind::GoalReply);
            reply.id = frame.id;
            reply.code = static_cast<std::uint8_t>(goal_answer.code);
            reply.name = goal_answer.name;
            reply.payload = goal_answer.payload.dump();
            connection.send(reply);
        };
        switch (static_cast<Kind>(frame.kind)) {
            case Kind::SendGoal:
                return goals_.send(frame.name, body, connection.peer, connection.follower, answer);
            case Kind::CancelGoal:
                return goals_.cancel(frame.name, body, answer);
            default:
                return goals_.attach(frame.name, body, connection.follower, answer);
        }
    }

    void handle_property(Connection& connection, const wire::Frame& frame) {
        wire::Frame answer;
        answer.kind = kind(Kind::PropertyReply);
        answer.id = frame.id;
        answer.name = frame.name;
        auto refuse_update = [&](ErrorCode code, const std::string& name,
                                 const std::string& message, const Json& value) {
            answer.code = static_cast<std::uint8_t>(code);
            answer.payload =
                Json{{"error", name}, {"message", message}, {"value", value}}.dump();
            connection.send(answer);
        };
        std::lock_guard lock(properties_);
        auto found = properties_map_.find(frame.name);
        if (found == properties_map_.end()) {
            return refuse_update(ErrorCode::MethodNotFound, error_names::unknown_property,
                                 "interface " + identity_.interface + " has no property `" +
                                     frame.name + "`",
                                 Json(nullptr));
        }
        PropertyState& state = found->second;
        answer.version = state.version;
        if (frame.kind == kind(Kind::SetProperty)) {
            if (state.read_only) {
                return refuse_update(ErrorCode::Unauthorized, error_names::read_only,
                                     "property `" + frame.name + "` is read-only", state.value);
            }
            Json value;
            try {
                value = service_.check_property(frame.name, Json::parse(frame.payload));
            } catch (const std::exception& error) {
                return refuse_update(ErrorCode::ServerDeserializationError,
                                     error_names::invalid_arguments, error.what(), state.value);
            }
            if (frame.version != state.version) {
                return refuse_update(ErrorCode::OutOfSync, error_names::out_of_sync,
                                     "the update was based on version " +
                                         std::to_string(frame.version) + ", the current one is " +
                                         std::to_string(state.version),
                                     state.value);
            }
            apply(found->first, state, value);
            answer.version = state.version;
        }
        answer.payload = state.value.dump();
        connection.send(answer);
    }

    std::string path_;
    ServerIdentity identity_;
    /// What this server says of itself in the handshake, description included.
    detail::Peer welcome_;
    Service& service_;
    int stop_event_ = -1;
    int listener_ = -1;
    dev_t bound_device_ = 0;
    ino_t bound_inode_ = 0;
    std::thread acceptor_;
    std::atomic<bool> stopped_{false};
    mutable std::mutex state_;
    std::condition_variable all_ended_;
    int running_ = 0;
    std::set<std::shared_ptr<Connection>> connections_;
    mutable std::mutex properties_;
    std::map<std::string, PropertyState> properties_map_;
    detail::GoalBook goals_;
};

UnixServer::UnixServer(std::unique_ptr<ServerCore> core) : core_(std::move(core)) {}

std::unique_ptr<UnixServer> UnixServer::serve(const std::string& path, ServerIdentity identity,
                                              std::vector<PropertySpec> properties,
                                              Service& service) {
    auto core = std::make_unique<ServerCore>(path, std::move(identity), std::move(properties),
                                             service);
    core->listen();
    return std::unique_ptr<UnixServer>(new UnixServer(std::move(core)));
}

UnixServer::~UnixServer() = default;
void UnixServer::emit(const std::string& signal, const Json& values) { core_->emit(signal, values); }
void UnixServer::set_property(const std::string& name, const Json& value) {
    core_->set_property(name, value);
}
std::pair<Json, std::uint64_t> UnixServer::property(const std::string& name) const {
    return core_->property(name);
}
void UnixServer::stop() { core_->stop(); }
const std::string& UnixServer::path() const { return core_->path(); }

}  // namespace switchboard
