// The thermostat's server in C++: `thermostat_server [WHERE]` serves one zone at WHERE (a socket
// path, `unix:///path` or `mqtt://host:port?instance=…`; by default the interface's default
// socket path), says "serving" and serves until its standard input ends.
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <thermostat/thermostat.hpp>

namespace {

/// One heating zone: boosts of at most 10 °C, and a fixed status.
class Zone final : public thermostat::ThermostatHandler {
public:
    switchboard::DateTime boost(const switchboard::CallContext& /*context*/, double extra_celsius,
                                switchboard::Duration for_how_long,
                                std::optional<std::string> /*reason*/) override {
        if (extra_celsius > 10.0) throw switchboard::RemoteError::client_error("at most 10 °C");
        return std::chrono::time_point_cast<switchboard::Duration>(std::chrono::system_clock::now()) +
               for_how_long;
    }

    thermostat::GetStatusReply get_status(const switchboard::CallContext& /*context*/) override {
        return {thermostat::Mode::heat, 19.5, {19.0, 19.5}};
    }
};

}  // namespace

int main(int argc, char** argv) {
    const std::string where = argc > 1 ? argv[1] : "";
    auto server = thermostat::ThermostatServer::serve(
        std::make_shared<Zone>(), thermostat::ThermostatProperties{21.0, thermostat::Mode::heat}, where);
    std::cout << "serving" << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    // Destroying `server` stops it and removes its socket.
}
