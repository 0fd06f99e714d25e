// The thermostat's client in C++: `thermostat_client [WHERE]` reads the status, boosts, changes
// the set-point, reads it back and preheats, from the server at WHERE (as thermostat_server
// takes it), printing what it got; a refused boost shows a refusal.
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include <thermostat/thermostat.hpp>

int main(int argc, char** argv) {
    const std::string where = argc > 1 ? argv[1] : "";
    try {
        auto client = thermostat::ThermostatClient::connect(where);
        const auto status = client.get_status().get();
        std::printf("status: %.1f °C, %zu readings\n", status.celsius, status.history.size());
        const auto ends = client.boost(2.0, std::chrono::minutes(30), std::nullopt).get();
        std::printf("boosted until %s\n", switchboard::format_datetime(ends).c_str());
        try {
            client.boost(20.0, std::chrono::minutes(1), std::nullopt).get();
        } catch (const switchboard::RemoteError& refused) {
            std::printf("refused: %s\n", refused.name().c_str());
        }
        client.set_setpoint(22.5).get();
        std::printf("set-point: %.1f\n", client.get_setpoint().get());
        auto preheat = client.preheat(23.5, [](const thermostat::PreheatFeedback& progress) {
            std::printf("preheating: %.2f °C (%d %%)\n", progress.celsius, progress.percent);
        }).get();
        std::printf("preheated to %.2f °C\n", preheat.result().get());
    } catch (const std::exception& error) {
        std::fprintf(stderr, "thermostat_client: %s\n", error.what());
        return 1;
    }
    return 0;
}
