// The thermostat's server in C++: `thermostat_server [WHERE]` serves one zone at WHERE (a socket
// path, `unix:///path` or `mqtt://host:port?instance=…`; by default the interface's default
// socket path), says "serving" and serves until its standard input ends.
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <thermostat/thermostat.hpp>

namespace {

/// One heating zone: boosts of at most 10 °C, a fixed status, and preheats up to 30 °C.
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

    /// Refuses a target above 30 °C before it starts.
    void accept_preheat(const switchboard::CallContext& /*context*/,
                        const thermostat::PreheatGoal& goal) override {
        if (goal.target_celsius > 30.0) throw thermostat::OutOfRange(goal.target_celsius, 5.0, 30.0);
    }

    /// Heats in four steps of 50 ms, reporting each, unless cancelled.
    double preheat(switchboard::GoalContext<thermostat::PreheatFeedback>& goal,
                   double target_celsius) override {
        double celsius = 19.5;
        const double step = (target_celsius - celsius) / 4;
        for (std::uint8_t percent = 25; percent <= 100; percent += 25) {
            if (goal.wait_cancelled(std::chrono::milliseconds(50))) throw switchboard::GoalCancelled();
            celsius += step;
            goal.feedback({celsius, percent});
        }
        return celsius;
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
