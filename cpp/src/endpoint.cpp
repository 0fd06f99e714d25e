// Picking the transport from a URL: `connect` and `serve` hand `unix://` (or a bare path) to
// the Unix socket and `mqtt://` to MQTT v5.
#include <string>

#include "switchboard/client.hpp"
#include "switchboard/mqtt.hpp"
#include "switchboard/server.hpp"

namespace switchboard {

namespace {

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

/// The socket path of a `unix://` URL or a bare path; `std::nullopt` for another scheme.
std::optional<std::string> unix_path(const std::string& where) {
    if (starts_with(where, "unix://")) return where.substr(7);
    if (where.find("://") == std::string::npos) return where;
    return std::nullopt;
}

}  // namespace

std::unique_ptr<ClientConnection> connect(const std::string& where, ClientIdentity identity,
                                    ClientOptions options) {
    if (auto path = unix_path(where)) return UnixClient::connect(*path, std::move(identity), options);
    if (starts_with(where, "mqtt://")) {
        return MqttClient::connect(MqttUrl::parse(where), std::move(identity), options);
    }
    throw TransportError("unsupported endpoint URL (the C++ runtime speaks unix:// and mqtt://): " +
                         where);
}

std::unique_ptr<Server> serve(const std::string& where, ServerIdentity identity,
                              std::vector<PropertySpec> properties, Service& service) {
    if (auto path = unix_path(where)) {
        return UnixServer::serve(*path, std::move(identity), std::move(properties), service);
    }
    if (starts_with(where, "mqtt://")) {
        return MqttServer::serve(MqttUrl::parse(where), std::move(identity), std::move(properties),
                                 service);
    }
    throw TransportError("unsupported endpoint URL (the C++ runtime speaks unix:// and mqtt://): " +
                         where);
}

}  // namespace switchboard
