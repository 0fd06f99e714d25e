// MQTT v5 in StingerIPC's wire (docs/wire/mqtt.md) on libmosquitto's C API: the URL a client or
// server is given, `MqttClient` (a `ClientConnection`) and `MqttServer` (a `Server`).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "switchboard/client.hpp"
#include "switchboard/server.hpp"

namespace switchboard {

/// A parsed `mqtt://[user:pass@]host[:port][?instance=…&client_id=…]` URL.
struct MqttUrl {
    std::string host = "127.0.0.1";
    int port = 1883;
    std::optional<std::string> username;
    std::optional<std::string> password;
    /// The service id (`instance`), when the URL names one.
    std::optional<std::string> instance;
    /// The MQTT client id, when the URL names one; otherwise a random UUID per connection.
    std::optional<std::string> client_id;

    /// Parses `url`. Throws `TransportError` naming the problem: another scheme, a bad port, a
    /// client id that is not a topic level, a query parameter this runtime does not know
    /// (`mqtts://`, `mqtt+unix://`, `replicas` and topic params are not supported in C++ yet).
    static MqttUrl parse(const std::string& url);
};

class MqttClientCore;

/// A client of one server instance over an MQTT v5 broker.
///
/// `connect` discovers the instance from its retained interface info (bounded by
/// `ClientOptions::connect_timeout`) and then watches the server's presence: when the server
/// goes offline (its will after a crash, or its farewell) the requests in flight fail with
/// `TransportError` and later ones fail at once until it is back. Completions, signal and watch
/// callbacks run on libmosquitto's network thread (deadlines on a timer thread of the client),
/// one at a time: they must not block or wait on a future of this client.
///
/// Thread safety: every member function may be called from any thread at the same time. The
/// destructor publishes the client's farewell, disconnects, fails what is in flight with
/// `TransportError` and joins its threads; it must not run in a callback.
class MqttClient final : public ClientConnection {
public:
    /// Connects to the broker of `url` and discovers the instance (`url`'s `instance`, else
    /// `identity.instance`). Throws `TransportError` when the broker cannot be reached or no
    /// live server announces itself in time, and `RemoteError` (`IncompatibleInterface`) when
    /// the server announces another interface, or another hash whose description a change
    /// breaks this client against (docs/interface-format.md, "Compatibility between versions").
    static std::unique_ptr<MqttClient> connect(const MqttUrl& url, ClientIdentity identity,
                                               ClientOptions options = {});
    ~MqttClient() override;
    MqttClient(const MqttClient&) = delete;
    MqttClient& operator=(const MqttClient&) = delete;

    void call(const std::string& method, Json args, std::chrono::milliseconds timeout,
              Completion done) override;
    void get_property(const std::string& name, Completion done) override;
    void set_property(const std::string& name, Json value, Completion done) override;
    void send_command(const std::string& name, Json args) override;
    Subscription subscribe(const std::string& signal,
                           std::function<void(const Json&)> on_signal) override;
    Subscription watch(const std::string& property,
                       std::function<void(const Json&, std::uint64_t)> on_value) override;
    /// Sends a goal; its reply and events come on this client's event topic of the action.
    void send_goal(const std::string& action, const std::string& goal, Json args,
                   GoalEvents events, Completion accepted) override;
    /// What cancels this client's goals.
    [[nodiscard]] std::weak_ptr<GoalCanceller> goal_canceller() override;
    [[nodiscard]] bool connected() const override;
    [[nodiscard]] const ClientOptions& options() const override;
    /// The interface info the server announced (docs/wire/mqtt.md, "Discovery").
    [[nodiscard]] const Json& server_info() const;
    /// This connection's MQTT client id.
    [[nodiscard]] const std::string& client_id() const;

private:
    explicit MqttClient(std::shared_ptr<MqttClientCore> core) : core_(std::move(core)) {}
    std::shared_ptr<MqttClientCore> core_;
};

class MqttServerCore;

/// A server of one instance over an MQTT v5 broker.
///
/// It announces itself (retained interface info and description, presence, every property's
/// retained value) after every CONNACK and every 120 s, and clears all of it on `stop`. Calls
/// and commands run on a pool of four worker threads, so several run at the same time and
/// handlers must be thread safe; property updates are handled on libmosquitto's network thread.
///
/// Thread safety: every member function may be called from any thread at the same time, except
/// that the destructor (and `stop`) must not run in a handler.
class MqttServer final : public Server {
public:
    /// Connects to the broker of `url` and serves instance `url.instance` (else
    /// `identity.instance`). `service` must outlive the server. Throws `TransportError` when
    /// the broker cannot be reached within 10 s.
    static std::unique_ptr<MqttServer> serve(const MqttUrl& url, ServerIdentity identity,
                                             std::vector<PropertySpec> properties,
                                             Service& service);
    ~MqttServer() override;
    MqttServer(const MqttServer&) = delete;
    MqttServer& operator=(const MqttServer&) = delete;

    /// Publishes `signal`; throws `TransportError` while the broker connection is down.
    void emit(const std::string& signal, const Json& values) override;
    void set_property(const std::string& name, const Json& value) override;
    [[nodiscard]] std::pair<Json, std::uint64_t> property(const std::string& name) const override;
    void stop() override;
    /// The URL it serves on.
    [[nodiscard]] const std::string& address() const override;

private:
    explicit MqttServer(std::unique_ptr<MqttServerCore> core);
    std::unique_ptr<MqttServerCore> core_;
};

}  // namespace switchboard
