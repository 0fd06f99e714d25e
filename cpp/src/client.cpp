// The client of the Unix-socket wire: the handshake, the table of requests in flight with their
// deadlines, and the reader thread that completes them and delivers signals, watched values and
// the events of the goals it sent.
#include "switchboard/client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "compat.hpp"
#include "goal_routes.hpp"
#include "pending.hpp"
#include "switchboard/wire.hpp"

namespace switchboard {

using Clock = std::chrono::steady_clock;

ErrorCode error_code_from(std::uint8_t code) noexcept {
    return code <= 15 ? static_cast<ErrorCode>(code) : ErrorCode::UnknownError;
}

namespace {

/// A remote error from a failed answer's name, code and `{"message","details"}` payload.
std::exception_ptr remote_error(const wire::Frame& frame, const Json& body) {
    std::string message = "(no message)";
    std::optional<Json> details;
    if (body.is_object()) {
        if (auto m = body.find("message"); m != body.end() && m->is_string()) {
            message = m->get<std::string>();
        }
        if (auto d = body.find("details"); d != body.end() && !d->is_null()) details = *d;
    }
    std::string name = frame.name;
    if (frame.kind == static_cast<std::uint8_t>(wire::Kind::PropertyReply) && body.is_object()) {
        if (auto e = body.find("error"); e != body.end() && e->is_string()) {
            name = e->get<std::string>();
        }
    }
    return std::make_exception_ptr(
        RemoteError(error_code_from(frame.code), name, message, std::move(details)));
}

/// A file descriptor closed when it goes out of scope.
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.release();
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    [[nodiscard]] int get() const noexcept { return fd_; }
    int release() noexcept {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

}  // namespace

/// The state one connection shares between callers, the reader thread and `Subscription`s.
class ClientCore final : public ListenerOwner,
                         public GoalCanceller,
                         public std::enable_shared_from_this<ClientCore> {
public:
    ClientCore(Fd socket, ClientOptions options, Json welcome, detail::Agreement agreement)
        : socket_(std::move(socket)), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
          options_(options), welcome_(std::move(welcome)), agreement_(std::move(agreement)) {
        if (wake_.get() < 0) throw TransportError(std::string("eventfd: ") + std::generic_category().message(errno));
    }

    void start() {
        reader_ = std::thread([self = this] { self->read_loop(); });
    }

    void close() {
        closing_ = true;
        ::shutdown(socket_.get(), SHUT_RDWR);
        poke();
        if (reader_.joinable()) reader_.join();
    }

    /// Registers a request and sends its frame; `done` is called exactly once.
    void request(wire::Frame frame, std::chrono::milliseconds timeout, Completion done,
                 std::string property = {}) {
        const auto deadline = Clock::now() + timeout;
        std::optional<Completion> refused;
        {
            std::lock_guard lock(state_);
            if (connected_) {
                frame.id = pending_.add({deadline, std::move(done), std::move(property)});
            } else {
                refused = std::move(done);
            }
        }
        if (refused) {
            fail_now(*refused, "not connected");
            return;
        }
        if (deadline < planned_wake_.load()) poke();
        if (!send(frame)) {
            // The reader sees the connection end and fails the request.
            ::shutdown(socket_.get(), SHUT_RDWR);
        }
    }

    void fail_now(const Completion& done, const std::string& why) {
        Outcome outcome;
        outcome.error = std::make_exception_ptr(TransportError(why));
        done(std::move(outcome));
    }

    bool send(const wire::Frame& frame) {
        const std::string bytes = wire::encode(frame);
        std::lock_guard lock(write_);
        return wire::write_all(socket_.get(), bytes);
    }

    std::uint64_t seen_version(const std::string& property) {
        std::lock_guard lock(state_);
        auto found = versions_.find(property);
        return found == versions_.end() ? 0 : found->second;
    }

    Subscription add_listener(bool watch, const std::string& name,
                              std::function<void(const Json&, std::uint64_t)> callback) {
        bool first = false;
        std::uint64_t token = 0;
        {
            std::lock_guard lock(state_);
            auto& table = watch ? watchers_ : subscribers_;
            auto& listeners = table[name];
            first = listeners.empty();
            token = next_token_++;
            listeners.emplace(token, std::move(callback));
        }
        if (first) {
            wire::Frame frame;
            frame.kind = static_cast<std::uint8_t>(watch ? wire::Kind::Watch : wire::Kind::Subscribe);
            frame.name = name;
            send(frame);
        }
        return Subscription(std::weak_ptr<ListenerOwner>(shared_from_this()), watch, name, token);
    }

    void remove_listener(bool watch, const std::string& name, std::uint64_t token) override {
        bool last = false;
        {
            std::lock_guard lock(state_);
            auto& table = watch ? watchers_ : subscribers_;
            auto found = table.find(name);
            if (found == table.end()) return;
            found->second.erase(token);
            if (found->second.empty()) {
                table.erase(found);
                last = true;
            }
            if (!connected_) return;
        }
        if (last) {
            wire::Frame frame;
            frame.kind =
                static_cast<std::uint8_t>(watch ? wire::Kind::Unwatch : wire::Kind::Unsubscribe);
            frame.name = name;
            send(frame);
        }
    }

    /// Routes goal `goal`'s events to `events`, then sends it.
    void send_goal(const std::string& action, const std::string& goal, Json args,
                   GoalEvents events, Completion accepted) {
        goals_.add(goal, std::move(events));
        wire::Frame frame;
        frame.kind = static_cast<std::uint8_t>(wire::Kind::SendGoal);
        frame.name = action;
        frame.payload = Json{{"goal", goal}, {"args", std::move(args)}}.dump();
        std::weak_ptr<ClientCore> weak = shared_from_this();
        request(std::move(frame), options_.call_timeout,
                [weak, goal, accepted = std::move(accepted)](Outcome outcome) {
                    if (outcome.error) {
                        if (auto core = weak.lock()) core->goals_.remove(goal);
                    }
                    accepted(std::move(outcome));
                });
    }

    void cancel_goal(const std::string& action, const std::string& goal,
                     Completion done) override {
        wire::Frame frame;
        frame.kind = static_cast<std::uint8_t>(wire::Kind::CancelGoal);
        frame.name = action;
        frame.payload = Json{{"goal", goal}}.dump();
        request(std::move(frame), options_.call_timeout, std::move(done));
    }

    bool connected() const {
        std::lock_guard lock(state_);
        return connected_;
    }

    const Json& welcome() const { return welcome_; }
    /// What this client and its server agreed on in the handshake.
    const detail::Agreement& agreement() const { return agreement_; }
    const ClientOptions& options() const { return options_; }

private:
    using Listener = std::function<void(const Json&, std::uint64_t)>;

    void poke() {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto written = ::write(wake_.get(), &one, sizeof one);
    }

    void read_loop() {
        std::vector<pollfd> fds{{socket_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
        while (true) {
            int wait_ms = -1;
            {
                std::lock_guard lock(state_);
                const auto earliest = pending_.earliest_deadline();
                planned_wake_ = earliest;
                if (earliest != Clock::time_point::max()) {
                    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
                        earliest - Clock::now());
                    wait_ms = static_cast<int>(std::max<std::int64_t>(0, left.count()));
                }
            }
            fds[0].revents = fds[1].revents = 0;
            const int ready = ::poll(fds.data(), fds.size(), wait_ms);
            if (ready < 0 && errno != EINTR) break;
            if (fds[1].revents != 0) {
                std::uint64_t count = 0;
                [[maybe_unused]] auto got = ::read(wake_.get(), &count, sizeof count);
            }
            expire();
            if (closing_) break;
            if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
            auto result = wire::read_frame(socket_.get(), wire::kMaxFrame);
            if (result.status == wire::ReadResult::Status::Ok) {
                dispatch(result.frame);
            } else if (result.status != wire::ReadResult::Status::Malformed) {
                break;
            }
        }
        disconnect(closing_ ? "the client was closed" : "disconnected");
    }

    void expire() {
        std::vector<detail::PendingRequests::Request> overdue;
        {
            std::lock_guard lock(state_);
            overdue = pending_.take_overdue(Clock::now());
        }
        detail::fail_requests(overdue, [] {
            return std::make_exception_ptr(TimeoutError("no answer before the deadline"));
        });
    }

    void disconnect(const std::string& why) {
        std::vector<detail::PendingRequests::Request> in_flight;
        {
            std::lock_guard lock(state_);
            connected_ = false;
            in_flight = pending_.take_all();
            subscribers_.clear();
            watchers_.clear();
        }
        detail::fail_requests(in_flight,
                              [&why] { return std::make_exception_ptr(TransportError(why)); });
        goals_.fail_all(why);
    }

    std::optional<detail::PendingRequests::Request> take(std::uint64_t id) {
        std::lock_guard lock(state_);
        return pending_.take(id);
    }

    void dispatch(const wire::Frame& frame) {
        Json body;
        if (!frame.payload.empty()) {
            body = Json::parse(frame.payload, nullptr, false);
        }
        switch (static_cast<wire::Kind>(frame.kind)) {
            case wire::Kind::GoalFeedback:
            case wire::Kind::GoalStatus:
            case wire::Kind::GoalFinished:
                return goal_event(frame, body);
            case wire::Kind::Reply:
            case wire::Kind::GoalReply:
            case wire::Kind::Description:
            case wire::Kind::PropertyReply:
            case wire::Kind::Error: {
                if (frame.id == 0) return;  // an informative ERROR
                auto pending = take(frame.id);
                if (!pending) return;  // it timed out meanwhile
                Outcome outcome;
                outcome.version = frame.version;
                if (frame.kind == static_cast<std::uint8_t>(wire::Kind::PropertyReply) &&
                    !pending->property.empty()) {
                    std::lock_guard lock(state_);
                    auto& seen = versions_[pending->property];
                    seen = std::max(seen, frame.version);
                }
                if (body.is_discarded()) {
                    outcome.error = std::make_exception_ptr(
                        DecodeError("", "the answer's payload is not JSON"));
                } else if (frame.code != 0 ||
                           frame.kind == static_cast<std::uint8_t>(wire::Kind::Error)) {
                    wire::Frame named = frame;
                    if (frame.kind == static_cast<std::uint8_t>(wire::Kind::Error)) {
                        named.name = error_names::protocol_error;
                    }
                    outcome.error = remote_error(named, body);
                } else {
                    outcome.value = std::move(body);
                }
                pending->done(std::move(outcome));
                return;
            }
            case wire::Kind::Signal:
            case wire::Kind::PropertyValue: {
                const bool watch = frame.kind == static_cast<std::uint8_t>(wire::Kind::PropertyValue);
                if (body.is_discarded()) return;
                std::vector<Listener> listeners;
                {
                    std::lock_guard lock(state_);
                    if (watch) {
                        auto& seen = versions_[frame.name];
                        seen = std::max(seen, frame.version);
                    }
                    auto& table = watch ? watchers_ : subscribers_;
                    auto found = table.find(frame.name);
                    if (found == table.end()) return;
                    for (const auto& [token, listener] : found->second) listeners.push_back(listener);
                }
                for (const auto& listener : listeners) {
                    try {
                        listener(body, frame.version);
                    } catch (const std::exception& error) {
                        // A value that does not decode, or a callback that threw: the other
                        // listeners and the connection go on.
                        (void)std::fprintf(stderr, "switchboard: %s `%s` not delivered: %s\n",
                                     watch ? "property value" : "signal", frame.name.c_str(),
                                     error.what());
                    } catch (...) {
                        (void)std::fprintf(stderr, "switchboard: a callback for `%s` threw\n",
                                     frame.name.c_str());
                    }
                }
                return;
            }
            default:
                return;  // nothing else comes from a server; ignore what is new
        }
    }

    /// GOAL_FEEDBACK, GOAL_STATUS and GOAL_FINISHED: routed by the goal id in the payload.
    void goal_event(const wire::Frame& frame, const Json& body) {
        using Type = detail::GoalEventType;
        const auto kind = static_cast<wire::Kind>(frame.kind);
        const Type type = kind == wire::Kind::GoalFinished   ? Type::Finished
                          : kind == wire::Kind::GoalFeedback ? Type::Feedback
                                                             : Type::Status;
        goals_.deliver(type, body, frame.code);
    }

    Fd socket_;
    Fd wake_;
    ClientOptions options_;
    Json welcome_;
    const detail::Agreement agreement_;
    std::thread reader_;
    std::atomic<bool> closing_{false};
    std::atomic<Clock::time_point> planned_wake_{Clock::time_point::max()};
    std::mutex write_;
    mutable std::mutex state_;
    bool connected_ = true;
    std::uint64_t next_token_ = 1;
    /// The requests in flight, guarded by `state_` (with `connected_`).
    detail::PendingRequests pending_;
    std::map<std::string, std::uint64_t> versions_;
    std::map<std::string, std::map<std::uint64_t, Listener>> subscribers_;
    std::map<std::string, std::map<std::uint64_t, Listener>> watchers_;
    /// The goals this client sent and that have not ended.
    detail::GoalRoutes goals_;
};

Subscription& Subscription::operator=(Subscription&& other) noexcept {
    if (this != &other) {
        reset();
        core_ = std::move(other.core_);
        watch_ = other.watch_;
        name_ = std::move(other.name_);
        token_ = other.token_;
        other.token_ = 0;
    }
    return *this;
}

void Subscription::reset() noexcept {
    if (token_ == 0) return;
    if (auto core = core_.lock()) {
        try {
            core->remove_listener(watch_, name_, token_);
        } catch (...) {
            // Ending a subscription on a broken connection has nothing left to do.
        }
    }
    token_ = 0;
    core_.reset();
}

std::unique_ptr<UnixClient> UnixClient::connect(const std::string& path, ClientIdentity identity,
                                                ClientOptions options) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) {
        throw TransportError("socket path is longer than 107 bytes: " + path);
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    Fd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (socket.get() < 0) throw TransportError(std::string("socket: ") + std::generic_category().message(errno));
    if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        throw TransportError("cannot connect to " + path + ": " + std::generic_category().message(errno));
    }
    // The handshake must finish within the connect timeout.
    const auto ms = options.connect_timeout.count();
    timeval limit{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    ::setsockopt(socket.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    Json hello = {{"protocol", wire::kProtocol},
                  {"interface", identity.interface},
                  {"version", identity.version},
                  {"hash", identity.hash ? Json(*identity.hash) : Json(nullptr)},
                  {"instance", identity.instance}};
    wire::Frame frame;
    frame.kind = static_cast<std::uint8_t>(wire::Kind::Hello);
    frame.name = identity.interface;
    frame.payload = hello.dump();
    if (!identity.description.empty()) {
        // The description lets a server of another hash decide member by member; a HELLO it
        // would take past the handshake limit goes without it, as an older client's does.
        Json description = Json::parse(identity.description, nullptr, false);
        if (description.is_object()) {
            hello["description"] = std::move(description);
            std::string with = hello.dump();
            if (with.size() + 64 + identity.interface.size() <= wire::kMaxHello) {
                frame.payload = std::move(with);
            }
        }
    }
    if (!wire::write_all(socket.get(), wire::encode(frame))) {
        throw TransportError("the server at " + path + " closed the connection");
    }
    auto answer = wire::read_frame(socket.get(), wire::kMaxFrame);
    if (answer.status != wire::ReadResult::Status::Ok) {
        throw TransportError("no WELCOME from the server at " + path);
    }
    Json body = Json::parse(answer.frame.payload, nullptr, false);
    if (answer.frame.kind == static_cast<std::uint8_t>(wire::Kind::Refused)) {
        std::rethrow_exception(remote_error(answer.frame, body));
    }
    if (answer.frame.kind != static_cast<std::uint8_t>(wire::Kind::Welcome) || !body.is_object()) {
        throw TransportError("the server at " + path + " answered HELLO with something else");
    }
    // The server has checked this client already; the same check on this side learns which
    // members the server lacks (none when the hashes are equal, or when the server sent no
    // description, which it does only for an equal hash).
    detail::Agreement agreement;
    try {
        agreement = detail::check(detail::Peer::from_identity(identity), detail::Peer::from_hello(body));
    } catch (const detail::Incompatible&) {
        // The server admitted this client; its verdict stands, as a Rust client's does.
    }
    timeval none{0, 0};
    ::setsockopt(socket.get(), SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    auto core = std::make_shared<ClientCore>(std::move(socket), options, std::move(body),
                                             std::move(agreement));
    core->start();
    return std::unique_ptr<UnixClient>(new UnixClient(std::move(core)));
}

UnixClient::~UnixClient() { core_->close(); }

void UnixClient::call(const std::string& method, Json args, std::chrono::milliseconds timeout,
                      Completion done) {
    if (core_->agreement().refuse(detail::MemberKind::Method, method, done)) return;
    wire::Frame frame;
    frame.kind = static_cast<std::uint8_t>(wire::Kind::Call);
    frame.name = method;
    frame.payload = args.dump();
    core_->request(std::move(frame), timeout, std::move(done));
}

void UnixClient::get_property(const std::string& name, Completion done) {
    if (core_->agreement().refuse(detail::MemberKind::Property, name, done)) return;
    wire::Frame frame;
    frame.kind = static_cast<std::uint8_t>(wire::Kind::GetProperty);
    frame.name = name;
    core_->request(std::move(frame), core_->options().call_timeout, std::move(done), name);
}

void UnixClient::set_property(const std::string& name, Json value, Completion done) {
    if (core_->agreement().refuse(detail::MemberKind::Property, name, done)) return;
    const std::uint64_t version = core_->seen_version(name);
    if (version == 0) {
        // Versions start at 1: learn the current one first, then update.
        std::weak_ptr<ClientCore> weak = core_;
        get_property(name, [weak, name, value = std::move(value),
                            done = std::move(done)](Outcome read) mutable {
            auto core = weak.lock();
            if (read.error || !core) {
                done(std::move(read));
                return;
            }
            wire::Frame frame;
            frame.kind = static_cast<std::uint8_t>(wire::Kind::SetProperty);
            frame.name = name;
            frame.version = read.version;
            frame.payload = value.dump();
            core->request(std::move(frame), core->options().call_timeout, std::move(done), name);
        });
        return;
    }
    wire::Frame frame;
    frame.kind = static_cast<std::uint8_t>(wire::Kind::SetProperty);
    frame.name = name;
    frame.version = version;
    frame.payload = value.dump();
    core_->request(std::move(frame), core_->options().call_timeout, std::move(done), name);
}

void UnixClient::send_command(const std::string& name, Json args) {
    core_->agreement().require(detail::MemberKind::Command, name);
    wire::Frame frame;
    frame.kind = static_cast<std::uint8_t>(wire::Kind::Command);
    frame.name = name;
    frame.payload = args.dump();
    if (!core_->connected() || !core_->send(frame)) throw TransportError("not connected");
}

void UnixClient::describe(Completion done) {
    wire::Frame frame;
    frame.kind = static_cast<std::uint8_t>(wire::Kind::Describe);
    core_->request(std::move(frame), core_->options().call_timeout, std::move(done));
}

Subscription UnixClient::subscribe(const std::string& signal,
                                   std::function<void(const Json&)> on_signal) {
    core_->agreement().require(detail::MemberKind::Signal, signal);
    return core_->add_listener(false, signal,
                               [on_signal = std::move(on_signal)](const Json& values,
                                                                  std::uint64_t) { on_signal(values); });
}

Subscription UnixClient::watch(const std::string& property,
                               std::function<void(const Json&, std::uint64_t)> on_value) {
    core_->agreement().require(detail::MemberKind::Property, property);
    return core_->add_listener(true, property, std::move(on_value));
}

void UnixClient::send_goal(const std::string& action, const std::string& goal, Json args,
                           GoalEvents events, Completion accepted) {
    if (core_->agreement().refuse(detail::MemberKind::Action, action, accepted)) return;
    core_->send_goal(action, goal, std::move(args), std::move(events), std::move(accepted));
}

std::weak_ptr<GoalCanceller> UnixClient::goal_canceller() { return core_; }

bool UnixClient::connected() const { return core_->connected(); }
const Json& UnixClient::server_identity() const { return core_->welcome(); }
const ClientOptions& UnixClient::options() const { return core_->options(); }

}  // namespace switchboard
