// MQTT v5 in StingerIPC's wire (docs/wire/mqtt.md) on libmosquitto's C API: URL parsing, one
// broker link per client or server (presence, will, subscriptions with identifiers, re-subscribe
// after a reconnect), and the client and server on top of it, goals included.
#include "switchboard/mqtt.hpp"

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "compat.hpp"
#include "goal_routes.hpp"
#include "goals.hpp"
#include "pending.hpp"

namespace switchboard {

using Clock = std::chrono::steady_clock;

namespace {

constexpr int kKeepAliveSeconds = 30;
constexpr std::uint32_t kWillExpirySeconds = 600;
constexpr std::uint32_t kInfoExpirySeconds = 144;
constexpr auto kAdvertInterval = std::chrono::seconds(120);
constexpr auto kPresenceWait = std::chrono::milliseconds(300);
constexpr auto kFarewellWait = std::chrono::seconds(2);
constexpr const char* kJson = "application/json";
constexpr int kServerWorkers = 4;
constexpr std::size_t kServerQueueLimit = 1024;
/// How many clients' goal followers a server keeps before it forgets idle ones.
constexpr std::size_t kMaxFollowers = 4096;

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

std::string percent_decode(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size()) {
            const std::string hex = text.substr(i + 1, 2);
            char* end = nullptr;
            const long value = std::strtol(hex.c_str(), &end, 16);
            if (end != hex.c_str() + 2) throw TransportError("bad %-escape in MQTT URL: " + text);
            out.push_back(static_cast<char>(value));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

/// Whether `value` may be one topic level: not empty, no `/`, `+` or `#`.
bool is_topic_level(const std::string& value) {
    return !value.empty() && value.find_first_of("/+#") == std::string::npos;
}

/// A random UUID (version 4) in its usual text form.
std::string random_uuid() {
    static std::mutex mutex;
    static std::mt19937_64 rng{std::random_device{}()};
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    {
        std::lock_guard lock(mutex);
        a = rng();
        b = rng();
    }
    a = (a & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
    b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
    std::array<char, 37> text{};
    (void)std::snprintf(text.data(), text.size(), "%08llx-%04llx-%04llx-%04llx-%012llx",
                        static_cast<unsigned long long>(a >> 32),
                        static_cast<unsigned long long>((a >> 16) & 0xFFFF),
                        static_cast<unsigned long long>(a & 0xFFFF),
                        static_cast<unsigned long long>(b >> 48),
                        static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
    return text.data();
}

/// Every MQTT string we send has its control characters replaced by spaces.
std::string printable(std::string text) {
    for (auto& c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
    }
    return text;
}

std::string timestamp_now() {
    const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now());
    return format_datetime(std::chrono::time_point_cast<Duration>(now));
}

/// An MQTT v5 property list, freed when it goes out of scope.
class Properties {
public:
    Properties() = default;
    Properties(const Properties&) = delete;
    Properties& operator=(const Properties&) = delete;
    ~Properties() { mosquitto_property_free_all(&list_); }

    Properties& content_type_json() {
        mosquitto_property_add_string(&list_, MQTT_PROP_CONTENT_TYPE, kJson);
        return *this;
    }
    Properties& response_topic(const std::string& topic) {
        mosquitto_property_add_string(&list_, MQTT_PROP_RESPONSE_TOPIC, topic.c_str());
        return *this;
    }
    Properties& correlation(const std::string& data) {
        mosquitto_property_add_binary(&list_, MQTT_PROP_CORRELATION_DATA, data.data(),
                                      static_cast<std::uint16_t>(data.size()));
        return *this;
    }
    Properties& expiry(std::uint32_t seconds) {
        mosquitto_property_add_int32(&list_, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, seconds);
        return *this;
    }
    Properties& user(const std::string& name, const std::string& value) {
        mosquitto_property_add_string_pair(&list_, MQTT_PROP_USER_PROPERTY, name.c_str(),
                                           printable(value).c_str());
        return *this;
    }
    Properties& subscription_id(std::uint32_t id) {
        mosquitto_property_add_varint(&list_, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, id);
        return *this;
    }
    [[nodiscard]] const mosquitto_property* get() const { return list_; }
    /// Gives the list away (to `mosquitto_will_set_v5`, which owns it on success).
    mosquitto_property* release() {
        auto* list = list_;
        list_ = nullptr;
        return list;
    }

private:
    mosquitto_property* list_ = nullptr;
};

/// A received message with the properties we read.
struct Message {
    std::string topic;
    std::string payload;
    bool retained = false;
    bool has_content_type = false;
    std::string content_type;
    bool has_response_topic = false;
    std::string response_topic;
    bool has_correlation = false;
    std::string correlation;
    std::vector<std::pair<std::string, std::string>> user;

    [[nodiscard]] const std::string* user_property(const std::string& name) const {
        for (const auto& [key, value] : user) {
            if (key == name) return &value;
        }
        return nullptr;
    }
    [[nodiscard]] bool json_content() const { return !has_content_type || content_type == kJson; }
};

Message read_message(const mosquitto_message* message, const mosquitto_property* props) {
    Message out;
    out.topic = message->topic != nullptr ? message->topic : "";
    if (message->payloadlen > 0) {
        out.payload.assign(static_cast<const char*>(message->payload),
                           static_cast<std::size_t>(message->payloadlen));
    }
    out.retained = message->retain;
    char* text = nullptr;
    if (mosquitto_property_read_string(props, MQTT_PROP_CONTENT_TYPE, &text, false) != nullptr) {
        out.has_content_type = true;
        out.content_type = text;
        std::free(text);
    }
    text = nullptr;
    if (mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &text, false) != nullptr) {
        out.has_response_topic = true;
        out.response_topic = text;
        std::free(text);
    }
    void* data = nullptr;
    std::uint16_t length = 0;
    if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &data, &length, false) !=
        nullptr) {
        out.has_correlation = true;
        out.correlation.assign(static_cast<const char*>(data), length);
        std::free(data);
    }
    const mosquitto_property* at = props;
    bool skip = false;
    while (true) {
        char* name = nullptr;
        char* value = nullptr;
        at = mosquitto_property_read_string_pair(at, MQTT_PROP_USER_PROPERTY, &name, &value, skip);
        if (at == nullptr) break;
        out.user.emplace_back(name != nullptr ? name : "", value != nullptr ? value : "");
        std::free(name);
        std::free(value);
        skip = true;
    }
    return out;
}

/// Splits `topic` at `/`.
std::vector<std::string> levels(const std::string& topic) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (true) {
        const auto slash = topic.find('/', start);
        out.push_back(topic.substr(start, slash - start));
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return out;
}

/// Reads `{"online":true|false}` (any spacing); `std::nullopt` for anything else.
std::optional<bool> read_presence(const std::string& payload) {
    const Json body = Json::parse(payload, nullptr, false);
    if (!body.is_object()) return std::nullopt;
    auto online = body.find("online");
    if (online == body.end() || !online->is_boolean()) return std::nullopt;
    return online->get<bool>();
}

void library_init() {
    static std::once_flag once;
    std::call_once(once, [] { mosquitto_lib_init(); });
}

/// One MQTT v5 connection to a broker: the will and presence of its client id, subscriptions
/// (each with its own identifier, re-issued after every reconnect) and publishing.
///
/// Callbacks run on libmosquitto's network thread. Thread safety: every member function may be
/// called from any thread; `subscribe` and `close` must not be called from a callback.
class Link {
public:
    struct Handlers {
        std::function<void(const Message&)> message;
        /// After every CONNACK, once the subscriptions are re-issued and presence published.
        std::function<void()> connected;
        /// When the connection is lost (not on `close`).
        std::function<void()> lost;
    };

    Link(const MqttUrl& url, std::string client_id, Handlers handlers)
        : url_(url), client_id_(std::move(client_id)), handlers_(std::move(handlers)),
          handle_(new_handle(client_id_, this)) {
        if (handle_ == nullptr) throw TransportError("mosquitto_new failed");
        mosquitto_int_option(handle_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
        mosquitto_int_option(handle_, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_reconnect_delay_set(handle_, 1, 2, true);
        if (url.username) {
            mosquitto_username_pw_set(handle_, url.username->c_str(),
                                      url.password ? url.password->c_str() : nullptr);
        }
        const std::string offline = R"({"online":false})";
        Properties will;
        will.content_type_json().expiry(kWillExpirySeconds);
        mosquitto_property* owned = will.release();
        const int rc = mosquitto_will_set_v5(handle_, presence_topic().c_str(),
                                             static_cast<int>(offline.size()), offline.data(), 1,
                                             true, owned);
        if (rc != MOSQ_ERR_SUCCESS) {
            mosquitto_property_free_all(&owned);
            mosquitto_destroy(handle_);
            throw TransportError(std::string("cannot set the MQTT will: ") + mosquitto_strerror(rc));
        }
        mosquitto_connect_v5_callback_set(handle_, &Link::on_connect);
        mosquitto_disconnect_v5_callback_set(handle_, &Link::on_disconnect);
        mosquitto_message_v5_callback_set(handle_, &Link::on_message);
        mosquitto_subscribe_v5_callback_set(handle_, &Link::on_subscribe);
        mosquitto_publish_v5_callback_set(handle_, &Link::on_publish);
    }

    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    ~Link() {
        close();
        mosquitto_destroy(handle_);
    }

    /// Connects and waits for the CONNACK for at most `limit`.
    void open(std::chrono::milliseconds limit) {
        const int rc = mosquitto_connect_bind_v5(handle_, url_.host.c_str(), url_.port,
                                                 kKeepAliveSeconds, nullptr, nullptr);
        if (rc != MOSQ_ERR_SUCCESS) {
            throw TransportError("cannot reach the MQTT broker at " + url_.host + ":" +
                                 std::to_string(url_.port) + ": " +
                                 (rc == MOSQ_ERR_ERRNO ? std::generic_category().message(errno)
                                                       : std::string(mosquitto_strerror(rc))));
        }
        if (mosquitto_loop_start(handle_) != MOSQ_ERR_SUCCESS) {
            throw TransportError("cannot start libmosquitto's network thread");
        }
        looping_ = true;
        std::unique_lock lock(mutex_);
        if (!changed_.wait_for(lock, limit, [&] { return connected_ || refused_ != 0; })) {
            lock.unlock();
            close();
            throw TransportError("no CONNACK from the MQTT broker at " + url_.host + ":" +
                                 std::to_string(url_.port));
        }
        if (refused_ != 0) {
            const int reason = refused_;
            lock.unlock();
            close();
            throw TransportError(std::string("the MQTT broker refused the connection: ") +
                                 mosquitto_reason_string(reason));
        }
    }

    /// Publishes; returns false when the connection is down.
    bool publish(const std::string& topic, const std::string& payload, int qos, bool retain,
                 const Properties& props, int* mid = nullptr) {
        const int rc = mosquitto_publish_v5(handle_, mid, topic.c_str(),
                                            static_cast<int>(payload.size()),
                                            payload.empty() ? nullptr : payload.data(), qos,
                                            retain, props.get());
        return rc == MOSQ_ERR_SUCCESS;
    }

    /// Subscribes `filter` (kept, and re-issued after every reconnect); with `wait`, returns once
    /// the broker acknowledged it (bounded by `limit`).
    void subscribe(const std::string& filter, int qos, bool wait,
                   std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
        std::uint32_t id = 0;
        {
            std::lock_guard lock(mutex_);
            auto found = filters_.find(filter);
            if (found == filters_.end()) {
                id = next_subscription_id_++;
                filters_.emplace(filter, Filter{qos, id});
            } else {
                id = found->second.id;
            }
        }
        if (!wait) {
            issue(filter, qos, id, nullptr);
            return;
        }
        // The SUBACK is noted only for subscriptions someone waits for; the lock is held from
        // issuing to registering so that the acknowledgement cannot come in between.
        std::unique_lock lock(mutex_);
        int mid = 0;
        if (!issue(filter, qos, id, &mid)) throw TransportError("not connected to the MQTT broker");
        awaited_[mid] = false;
        const bool done =
            changed_.wait_for(lock, limit, [&] { return awaited_[mid] || !connected_; });
        const bool acked = awaited_[mid];
        awaited_.erase(mid);
        if (!acked) {
            throw TransportError(done ? "not connected to the MQTT broker"
                                      : "the MQTT broker did not acknowledge the subscription to " +
                                            filter);
        }
    }

    void unsubscribe(const std::string& filter) {
        {
            std::lock_guard lock(mutex_);
            if (filters_.erase(filter) == 0) return;
        }
        mosquitto_unsubscribe(handle_, nullptr, filter.c_str());
    }

    /// Waits until the broker acknowledged the QoS 1 or 2 publication `mid` (bounded).
    bool wait_published(int mid, std::chrono::milliseconds limit) {
        std::unique_lock lock(mutex_);
        const bool done =
            changed_.wait_for(lock, limit, [&] { return published_.contains(mid) || !connected_; });
        published_.erase(mid);
        return done && connected_;
    }

    /// Publishes the farewell (after `before`, QoS 1 publications whose acknowledgement it waits
    /// for, at most 2 s), disconnects normally and stops the network thread.
    void close(const std::function<std::vector<int>()>& before = {}) {
        std::lock_guard closing(close_);
        if (!looping_) return;
        if (is_connected()) {
            {
                std::lock_guard lock(mutex_);
                watch_publishes_ = true;
            }
            std::vector<int> mids;
            if (before) mids = before();
            int farewell = 0;
            Properties props;
            props.content_type_json();
            if (publish(presence_topic(), R"({"online":false})", 1, true, props, &farewell)) {
                mids.push_back(farewell);
            }
            const auto deadline = Clock::now() + kFarewellWait;
            for (int mid : mids) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - Clock::now());
                if (left.count() <= 0 || !wait_published(mid, left)) break;
            }
        }
        {
            std::lock_guard lock(mutex_);
            closing_ = true;
        }
        mosquitto_disconnect_v5(handle_, MQTT_RC_NORMAL_DISCONNECTION, nullptr);
        mosquitto_loop_stop(handle_, false);
        looping_ = false;
        std::lock_guard lock(mutex_);
        connected_ = false;
        changed_.notify_all();
    }

    bool is_connected() const {
        std::lock_guard lock(mutex_);
        return connected_;
    }

    const std::string& client_id() const { return client_id_; }
    std::string presence_topic() const { return "client/" + client_id_ + "/online"; }

private:
    struct Filter {
        int qos = 1;
        std::uint32_t id = 0;
    };

    bool issue(const std::string& filter, int qos, std::uint32_t id, int* mid) {
        Properties props;
        props.subscription_id(id);
        return mosquitto_subscribe_v5(handle_, mid, filter.c_str(), qos, 0, props.get()) ==
               MOSQ_ERR_SUCCESS;
    }

    static void on_connect(mosquitto*, void* self, int rc, int, const mosquitto_property*) {
        static_cast<Link*>(self)->connected(rc);
    }
    static void on_disconnect(mosquitto*, void* self, int, const mosquitto_property*) {
        static_cast<Link*>(self)->disconnected();
    }
    static void on_message(mosquitto*, void* self, const mosquitto_message* message,
                           const mosquitto_property* props) {
        auto* link = static_cast<Link*>(self);
        try {
            link->handlers_.message(read_message(message, props));
        } catch (const std::exception& error) {
            (void)std::fprintf(stderr, "switchboard: an MQTT message on %s was not handled: %s\n",
                         message->topic, error.what());
        } catch (...) {
            (void)std::fprintf(stderr, "switchboard: an MQTT message on %s was not handled\n",
                         message->topic);
        }
    }
    /// A new libmosquitto client whose callbacks get `self` (the library initialised first).
    static mosquitto* new_handle(const std::string& client_id, Link* self) {
        library_init();
        return mosquitto_new(client_id.c_str(), true, self);
    }

    static void on_subscribe(mosquitto*, void* self, int mid, int, const int*,
                             const mosquitto_property*) {
        auto* link = static_cast<Link*>(self);
        std::lock_guard lock(link->mutex_);
        if (auto found = link->awaited_.find(mid); found != link->awaited_.end()) {
            found->second = true;
            link->changed_.notify_all();
        }
    }
    static void on_publish(mosquitto*, void* self, int mid, int, const mosquitto_property*) {
        auto* link = static_cast<Link*>(self);
        std::lock_guard lock(link->mutex_);
        // Only the farewell's and close's publications are waited for; keep the set small.
        if (link->watch_publishes_) link->published_.insert(mid);
        link->changed_.notify_all();
    }

    void connected(int rc) {
        if (rc != 0) {
            std::lock_guard lock(mutex_);
            refused_ = rc;
            changed_.notify_all();
            return;
        }
        std::vector<std::pair<std::string, Filter>> filters;
        {
            std::lock_guard lock(mutex_);
            connected_ = true;
            filters.assign(filters_.begin(), filters_.end());
        }
        for (const auto& [filter, spec] : filters) issue(filter, spec.qos, spec.id, nullptr);
        Properties props;
        props.content_type_json();
        publish(presence_topic(), R"({"online":true})", 1, true, props);
        if (handlers_.connected) handlers_.connected();
        std::lock_guard lock(mutex_);
        changed_.notify_all();
    }

    void disconnected() {
        bool closing = false;
        {
            std::lock_guard lock(mutex_);
            connected_ = false;
            closing = closing_;
            changed_.notify_all();
        }
        if (!closing && handlers_.lost) handlers_.lost();
    }

    MqttUrl url_;
    std::string client_id_;
    Handlers handlers_;
    mosquitto* handle_ = nullptr;
    std::mutex close_;
    std::atomic<bool> looping_{false};
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    bool connected_ = false;
    bool closing_ = false;
    bool watch_publishes_ = false;
    int refused_ = 0;
    std::uint32_t next_subscription_id_ = 10;
    std::map<std::string, Filter> filters_;
    std::map<int, bool> awaited_;
    std::set<int> published_;
};

/// The error of a reply's user properties: `ReturnCode`, `DebugInfo`, `ErrorName`,
/// `ErrorDetails`; `nullptr` for success.
std::exception_ptr reply_error(const Message& message) {
    const std::string* code_text = message.user_property("ReturnCode");
    int code = 0;
    if (code_text != nullptr) {
        char* end = nullptr;
        const long value = std::strtol(code_text->c_str(), &end, 10);
        code = (end != code_text->c_str() && *end == '\0' && value >= 0 && value <= 15)
                   ? static_cast<int>(value)
                   : static_cast<int>(ErrorCode::UnknownError);
    }
    if (code == 0) return nullptr;
    const auto error_code = static_cast<ErrorCode>(code);
    std::string name;
    if (const auto* given = message.user_property("ErrorName")) {
        name = *given;
    } else {
        switch (error_code) {
            case ErrorCode::ClientError: name = "ApplicationError"; break;
            case ErrorCode::ServerError: name = error_names::internal; break;
            case ErrorCode::ServerDeserializationError: name = error_names::invalid_arguments; break;
            case ErrorCode::MethodNotFound: name = error_names::unknown_method; break;
            case ErrorCode::Unauthorized: name = "AccessDenied"; break;
            case ErrorCode::OutOfSync: name = error_names::out_of_sync; break;
            default: name = "Error" + std::to_string(code); break;
        }
    }
    std::string text = "(no message)";
    if (const auto* debug = message.user_property("DebugInfo")) text = *debug;
    std::optional<Json> details;
    if (const auto* given = message.user_property("ErrorDetails")) {
        Json parsed = Json::parse(*given, nullptr, false);
        if (!parsed.is_discarded() && !parsed.is_null()) details = std::move(parsed);
    }
    return std::make_exception_ptr(RemoteError(error_code, name, text, std::move(details)));
}

std::exception_ptr transport_error(const std::string& why) {
    return std::make_exception_ptr(TransportError(why));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// URL

MqttUrl MqttUrl::parse(const std::string& url) {
    if (!starts_with(url, "mqtt://")) {
        throw TransportError("not an mqtt:// URL (the C++ runtime does not speak mqtts:// or "
                             "mqtt+unix:// yet): " + url);
    }
    MqttUrl out;
    std::string rest = url.substr(7);
    std::string query;
    if (auto q = rest.find('?'); q != std::string::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    if (rest.find('/') != std::string::npos) throw TransportError("an MQTT URL has no path: " + url);
    if (auto at = rest.rfind('@'); at != std::string::npos) {
        const std::string credentials = rest.substr(0, at);
        rest = rest.substr(at + 1);
        const auto colon = credentials.find(':');
        out.username = percent_decode(credentials.substr(0, colon));
        if (colon != std::string::npos) out.password = percent_decode(credentials.substr(colon + 1));
    }
    if (auto colon = rest.rfind(':'); colon != std::string::npos && rest.find(']') == std::string::npos) {
        const std::string port = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
        char* end = nullptr;
        const long value = std::strtol(port.c_str(), &end, 10);
        if (port.empty() || *end != '\0' || value < 1 || value > 65535) {
            throw TransportError("bad port in MQTT URL: " + url);
        }
        out.port = static_cast<int>(value);
    }
    if (!rest.empty()) out.host = rest;
    std::size_t start = 0;
    while (start < query.size()) {
        auto end = query.find('&', start);
        if (end == std::string::npos) end = query.size();
        const std::string pair = query.substr(start, end - start);
        start = end + 1;
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        const std::string key = pair.substr(0, eq);
        const std::string value = eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1));
        if (key == "instance") {
            if (!is_topic_level(value)) throw TransportError("bad instance in MQTT URL: " + url);
            out.instance = value;
        } else if (key == "client_id") {
            if (!is_topic_level(value)) throw TransportError("bad client_id in MQTT URL: " + url);
            out.client_id = value;
        } else {
            throw TransportError(
                std::string("the C++ runtime does not support the MQTT URL parameter `")
                    .append(key)
                    .append("`: ")
                    .append(url));
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Client

/// The state of one client: its link, the requests in flight, listeners and the server's
/// presence.
class MqttClientCore final : public ListenerOwner,
                             public GoalCanceller,
                             public std::enable_shared_from_this<MqttClientCore> {
public:
    using Listener = std::function<void(const Json&, std::uint64_t)>;

    MqttClientCore(const MqttUrl& url, ClientIdentity identity, ClientOptions options)
        : url_(url), identity_(std::move(identity)), options_(options),
          instance_(url.instance.value_or(identity_.instance)),
          correlation_prefix_(random_uuid().substr(0, 24)) {
        if (!is_topic_level(instance_)) throw TransportError("bad instance: " + instance_);
    }

    void open() {
        const std::string client_id = url_.client_id.value_or(random_uuid());
        Link::Handlers handlers;
        std::weak_ptr<MqttClientCore> weak = shared_from_this();
        handlers.message = [weak](const Message& message) {
            if (auto self = weak.lock()) self->dispatch(message);
        };
        handlers.lost = [weak] {
            if (auto self = weak.lock()) self->fail_all("the connection to the MQTT broker was lost");
        };
        link_ = std::make_unique<Link>(url_, client_id, std::move(handlers));
        timer_ = std::thread([this] { expire_loop(); });
        link_->open(options_.connect_timeout);
        const std::string mine = "client/" + client_id + "/" + identity_.interface;
        link_->subscribe(mine + "/method/+/response", 1, true);
        link_->subscribe(mine + "/property/+/update/response", 1, true);
        link_->subscribe(mine + "/signal/+", 1, true);
        discover();
    }

    void close() {
        if (link_) link_->close();
        {
            std::lock_guard lock(state_);
            closed_ = true;
            timer_wake_.notify_all();
        }
        if (timer_.joinable()) timer_.join();
        fail_all("the client was closed");
    }

    /// Registers a request under a new id and returns its correlation data; `done` is called
    /// with `TransportError` at once when the server is not reachable.
    std::optional<std::string> begin(std::chrono::milliseconds timeout, Completion& done,
                                     std::string property) {
        std::lock_guard lock(state_);
        if (closed_ || !link_->is_connected() || !server_online_) return std::nullopt;
        const std::uint64_t id =
            pending_.add({Clock::now() + timeout, std::move(done), std::move(property), false});
        timer_wake_.notify_all();
        std::array<char, 13> hex{};
        (void)std::snprintf(hex.data(), hex.size(), "%012llx",
                            static_cast<unsigned long long>(id & 0xFFFFFFFFFFFFULL));
        return correlation_prefix_ + hex.data();
    }

    void not_connected(Completion& done) {
        bool online = false;
        {
            std::lock_guard lock(state_);
            online = server_online_;
        }
        Outcome outcome;
        outcome.error = transport_error(online ? "not connected to the MQTT broker"
                                               : "the server is offline");
        done(std::move(outcome));
    }

    /// Takes the request whose correlation data is `data`, if it is one of ours in flight.
    std::optional<std::pair<std::uint64_t, Completion>> take(const std::string& data,
                                                             std::string* property = nullptr) {
        if (data.size() != correlation_prefix_.size() + 12 || !starts_with(data, correlation_prefix_)) {
            return std::nullopt;
        }
        const std::string hex = data.substr(correlation_prefix_.size());
        char* end = nullptr;
        const unsigned long long id = std::strtoull(hex.c_str(), &end, 16);
        if (*end != '\0') return std::nullopt;
        std::optional<detail::PendingRequests::Request> request;
        {
            std::lock_guard lock(state_);
            request = pending_.take(id);
        }
        if (!request) return std::nullopt;
        if (property != nullptr) *property = std::move(request->property);
        return std::make_pair(static_cast<std::uint64_t>(id), std::move(request->done));
    }

    void call(const std::string& method, const Json& args, std::chrono::milliseconds timeout,
              Completion done) {
        auto correlation = begin(timeout, done, {});
        if (!correlation) return not_connected(done);
        Properties props;
        props.content_type_json()
            .response_topic(own_topic("method/" + method + "/response"))
            .correlation(*correlation);
        if (!link_->publish(service_topic("method/" + method + "/request"), args.dump(), 0, false,
                            props)) {
            if (auto taken = take(*correlation)) not_connected(taken->second);
        }
    }

    void get_property(const std::string& name, Completion done) {
        bool registered = false;
        {
            std::lock_guard lock(state_);
            if (!closed_ && link_->is_connected() && server_online_) {
                pending_.add({Clock::now() + options_.call_timeout, std::move(done), name, true});
                timer_wake_.notify_all();
                registered = true;
            }
        }
        if (!registered) return not_connected(done);
        // Subscribing (again) makes the broker send the retained value, which completes the read.
        link_->subscribe(value_topic(name), 1, false);
    }

    void set_property(const std::string& name, Json value, Completion done) {
        const std::uint64_t version = seen_version(name);
        if (version == 0) {
            std::weak_ptr<MqttClientCore> weak = shared_from_this();
            get_property(name, [weak, name, value = std::move(value),
                                done = std::move(done)](Outcome read) mutable {
                auto self = weak.lock();
                if (read.error || !self) {
                    done(std::move(read));
                    return;
                }
                self->send_update(name, value, read.version, std::move(done));
            });
            return;
        }
        send_update(name, value, version, std::move(done));
    }

    void send_update(const std::string& name, const Json& value, std::uint64_t version,
                     Completion done) {
        auto correlation = begin(options_.call_timeout, done, name);
        if (!correlation) return not_connected(done);
        Properties props;
        props.content_type_json()
            .response_topic(own_topic("property/" + name + "/update/response"))
            .correlation(*correlation)
            .user("PropertyVersion", std::to_string(version));
        if (!link_->publish(service_topic("property/" + name + "/update"), value.dump(), 0, false,
                            props)) {
            if (auto taken = take(*correlation)) not_connected(taken->second);
        }
    }

    void send_command(const std::string& name, const Json& args) {
        if (!connected()) throw TransportError("not connected to the server over MQTT");
        Properties props;
        props.content_type_json().user("ClientId", link_->client_id());
        if (!link_->publish(service_topic("command/" + name), args.dump(), 2, false, props)) {
            throw TransportError("not connected to the MQTT broker");
        }
    }

    Subscription add_listener(bool watch, const std::string& name, Listener callback) {
        bool first = false;
        std::uint64_t token = 0;
        {
            std::lock_guard lock(state_);
            auto& table = watch ? watchers_ : subscribers_;
            auto& listeners = table[name];
            first = listeners.empty();
            token = next_token_++;
            listeners.emplace(token, Entry{std::move(callback), 0});
        }
        if (watch) {
            // Every watch re-subscribes: the broker then sends the retained (current) value,
            // which only the listeners that have not seen it get.
            link_->subscribe(value_topic(name), 1, true, options_.call_timeout);
        } else if (first) {
            link_->subscribe(service_topic("signal/" + name), 1, true, options_.call_timeout);
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
        }
        // A value topic stays subscribed (reads use it); a signal topic is left.
        if (last && !watch) link_->unsubscribe(service_topic("signal/" + name));
    }

    /// Routes goal `goal`'s events to `events`, then sends it (docs/wire/mqtt.md, "Actions").
    void send_goal(const std::string& action, const std::string& goal, Json args,
                   GoalEvents events, Completion accepted) {
        if (!actions_subscribed_.exchange(true)) {
            // Replies and events of every action come on one filter, subscribed before the
            // first goal is sent.
            link_->subscribe(own_topic("action/+/event"), 1, true, options_.call_timeout);
        }
        goals_.add(goal, std::move(events));
        std::weak_ptr<MqttClientCore> weak = shared_from_this();
        goal_request(action, "goal", Json{{"goal", goal}, {"args", std::move(args)}},
                     [weak, goal, accepted = std::move(accepted)](Outcome outcome) {
                         if (outcome.error) {
                             if (auto core = weak.lock()) core->goals_.remove(goal);
                         }
                         accepted(std::move(outcome));
                     });
    }

    void cancel_goal(const std::string& action, const std::string& goal,
                     Completion done) override {
        goal_request(action, "cancel", Json{{"goal", goal}}, std::move(done));
    }

    bool connected() const {
        std::lock_guard lock(state_);
        return !closed_ && link_->is_connected() && server_online_;
    }

    const ClientOptions& options() const { return options_; }
    const Json& info() const { return info_; }
    /// What this client and its server agreed on when it connected.
    const detail::Agreement& agreement() const { return agreement_; }
    const std::string& client_id() const { return link_->client_id(); }

private:
    struct Entry {
        Listener callback;
        /// The last version this listener got (watches only).
        std::uint64_t version = 0;
    };

    std::string service_topic(const std::string& rest) const {
        return identity_.interface + "/" + instance_ + "/" + rest;
    }
    std::string own_topic(const std::string& rest) const {
        return "client/" + link_->client_id() + "/" + identity_.interface + "/" + rest;
    }
    std::string value_topic(const std::string& property) const {
        return service_topic("property/" + property + "/value");
    }

    /// Publishes a goal request (`goal`, `cancel`) whose answer comes on this client's event
    /// topic of `action`, in order with the goal's events.
    void goal_request(const std::string& action, const std::string& request, const Json& body,
                      Completion done) {
        auto correlation = begin(options_.call_timeout, done, {});
        if (!correlation) return not_connected(done);
        Properties props;
        props.content_type_json()
            .response_topic(own_topic("action/" + action + "/event"))
            .correlation(*correlation)
            .user("ClientId", link_->client_id());
        if (!link_->publish(service_topic("action/" + action + "/" + request), body.dump(), 0,
                            false, props)) {
            if (auto taken = take(*correlation)) not_connected(taken->second);
        }
    }

    /// A goal event (a message on an event topic without correlation data).
    void goal_event(const Message& message) {
        if (!message.json_content()) return;
        const Json body = Json::parse(message.payload, nullptr, false);
        if (!body.is_object()) return;
        using Type = detail::GoalEventType;
        Type type = Type::Status;
        if (const auto* kind = message.user_property("GoalEvent")) {
            if (*kind == "feedback") type = Type::Feedback;
            if (*kind == "finished") type = Type::Finished;
        } else if (body.contains("feedback")) {
            type = Type::Feedback;
        } else if (body.contains("result") || body.contains("error") ||
                   body.value("status", std::string()) == "cancelled") {
            type = Type::Finished;
        }
        std::uint8_t code = 0;
        if (const auto* text = message.user_property("ReturnCode")) {
            const unsigned long value = std::strtoul(text->c_str(), nullptr, 10);
            code = value <= 255 ? static_cast<std::uint8_t>(value)
                                : static_cast<std::uint8_t>(ErrorCode::UnknownError);
        }
        goals_.deliver(type, body, code);
    }

    std::uint64_t seen_version(const std::string& property) {
        std::lock_guard lock(state_);
        auto found = versions_.find(property);
        return found == versions_.end() ? 0 : found->second;
    }

    /// Waits for a live server's interface info (docs/wire/mqtt.md, "Discovery").
    void discover() {
        const std::string topic = service_topic("interface");
        const auto deadline = Clock::now() + options_.connect_timeout;
        link_->subscribe(topic, 1, true, options_.connect_timeout);
        std::unique_lock lock(state_);
        while (true) {
            if (!discovery_.wait_until(lock, deadline, [&] { return info_.is_object(); })) {
                throw TransportError("no server of " + identity_.interface + " instance " +
                                     instance_ + " announced itself on " + topic);
            }
            check_compatible(info_);
            if (presence_topic_.empty()) break;
            const std::string presence = presence_topic_;
            lock.unlock();
            link_->subscribe(presence, 1, true, options_.connect_timeout);
            lock.lock();
            discovery_.wait_for(lock, kPresenceWait, [&] { return presence_known_; });
            if (server_online_) break;
            // A dead server's leftover announcement: wait for a live one.
            info_ = Json();
        }
    }

    /// Compares the announced interface with this client's (docs/interface-format.md,
    /// "Compatibility between versions"): by hash, and member by member when the hashes differ;
    /// keeps what the server lacks. Throws `IncompatibleInterface` when it does not fit.
    void check_compatible(const Json& info) {
        const std::string topic = service_topic("interface");
        const auto incompatible = [](const std::string& message) {
            return RemoteError(ErrorCode::ServiceUnavailable, "IncompatibleInterface", message);
        };
        if (const auto name = info.find("interface_name");
            name != info.end() && name->is_string() && *name != identity_.interface) {
            throw incompatible("`" + topic + "` announces interface " + name->get<std::string>() +
                               ", not " + identity_.interface);
        }
        const auto hash = info.find("hash");
        // A StingerIPC server announces no hash; nothing to compare.
        if (hash == info.end() || !hash->is_string()) return;
        const auto version = info.find("version");
        const auto description = info.find("description");
        const detail::Peer server{
            identity_.interface,
            version != info.end() && version->is_string() ? version->get<std::string>() : "?",
            hash->get<std::string>(), description != info.end() ? *description : Json()};
        try {
            agreement_ = detail::check(detail::Peer::from_identity(identity_), server);
        } catch (const detail::Incompatible& error) {
            throw incompatible("the service on `" + topic + "` does not fit this client: " +
                               error.what());
        }
    }

    void dispatch(const Message& message) {
        const auto parts = levels(message.topic);
        const auto& me = link_->client_id();
        // client/{me}/{interface}/method/{name}/response, …/property/{name}/update/response,
        // …/signal/{name}
        if (parts.size() >= 5 && parts[0] == "client" && parts[1] == me && parts[2] == identity_.interface) {
            if (parts[3] == "signal" && parts.size() == 5) return deliver(false, parts[4], message, 0);
            if (parts[3] == "action" && parts.size() == 6 && parts[5] == "event" &&
                !message.has_correlation) {
                return goal_event(message);
            }
            if (!message.has_correlation) return;
            std::string property;
            auto taken = take(message.correlation, &property);
            if (!taken) return;  // not ours, or it timed out meanwhile
            Outcome outcome;
            if (const auto* version = message.user_property("PropertyVersion")) {
                outcome.version = std::strtoull(version->c_str(), nullptr, 10);
                if (!property.empty()) note_version(property, outcome.version);
            }
            outcome.error = reply_error(message);
            if (!outcome.error) {
                Json body = message.payload.empty() ? Json::object()
                                                    : Json::parse(message.payload, nullptr, false);
                if (body.is_discarded()) {
                    outcome.error = std::make_exception_ptr(
                        DecodeError("", "the answer's payload is not JSON"));
                } else {
                    outcome.value = std::move(body);
                }
            }
            taken->second(std::move(outcome));
            return;
        }
        // {interface}/{instance}/signal/{name}, …/property/{name}/value, …/interface
        if (parts.size() >= 3 && parts[0] == identity_.interface && parts[1] == instance_) {
            if (parts[2] == "signal" && parts.size() == 4) return deliver(false, parts[3], message, 0);
            if (parts[2] == "property" && parts.size() == 5 && parts[4] == "value") {
                return property_value(parts[3], message);
            }
            if (parts[2] == "interface" && parts.size() == 3) return interface_info(message);
            return;
        }
        bool went_offline = false;
        {
            std::lock_guard lock(state_);
            if (!presence_topic_.empty() && message.topic == presence_topic_) {
                went_offline = presence(message);
            }
        }
        if (went_offline) fail_all("the server went offline");
    }

    void interface_info(const Message& message) {
        if (message.payload.empty()) return;
        Json info = Json::parse(message.payload, nullptr, false);
        if (!info.is_object() || info.value("interface_name", std::string()) != identity_.interface) {
            return;
        }
        std::string presence;
        if (auto topic = info.find("connection_topic"); topic != info.end() && topic->is_string()) {
            const std::string text = topic->get<std::string>();
            if (text.size() > 7 && text.compare(text.size() - 7, 7, "/online") == 0) presence = text;
        }
        std::string subscribe_to;
        {
            std::lock_guard lock(state_);
            if (!info_.is_object()) {
                info_ = info;
                presence_topic_ = presence;
                presence_known_ = false;
                server_online_ = true;
                discovery_.notify_all();
                return;
            }
            if (presence != presence_topic_ && !presence.empty()) {
                presence_topic_ = presence;
                subscribe_to = presence;
            }
            // A live announcement means the server is (back) up.
            if (!message.retained) server_online_ = true;
        }
        if (!subscribe_to.empty()) link_->subscribe(subscribe_to, 1, false);
    }

    /// Notes the server's presence; true when it just went offline. Called with `state_` held.
    bool presence(const Message& message) {
        const auto online = read_presence(message.payload);
        if (!online) return false;
        presence_known_ = true;
        const bool was = server_online_;
        server_online_ = *online;
        discovery_.notify_all();
        return was && !*online;
    }

    void note_version(const std::string& property, std::uint64_t version) {
        std::lock_guard lock(state_);
        auto& seen = versions_[property];
        seen = std::max(seen, version);
    }

    void property_value(const std::string& name, const Message& message) {
        if (message.payload.empty() || !message.json_content()) return;  // cleared, or not JSON
        std::uint64_t version = 0;
        if (const auto* text = message.user_property("PropertyVersion")) {
            version = std::strtoull(text->c_str(), nullptr, 10);
        }
        Json body = Json::parse(message.payload, nullptr, false);
        if (body.is_discarded()) return;
        std::vector<detail::PendingRequests::Request> reads;
        {
            std::lock_guard lock(state_);
            auto& seen = versions_[name];
            seen = std::max(seen, version);
            reads = pending_.take_if([&name](const detail::PendingRequests::Request& request) {
                return request.read && request.property == name;
            });
        }
        for (auto& read : reads) {
            Outcome outcome;
            outcome.value = body;
            outcome.version = version;
            read.done(std::move(outcome));
        }
        deliver(true, name, message, version, &body);
    }

    void deliver(bool watch, const std::string& name, const Message& message, std::uint64_t version,
                 const Json* parsed = nullptr) {
        if (!message.json_content()) return;
        Json body = parsed != nullptr ? *parsed : Json::parse(message.payload, nullptr, false);
        if (body.is_discarded()) return;
        std::vector<Listener> listeners;
        {
            std::lock_guard lock(state_);
            auto& table = watch ? watchers_ : subscribers_;
            auto found = table.find(name);
            if (found == table.end()) return;
            for (auto& [token, entry] : found->second) {
                if (watch) {
                    if (version != 0 && version <= entry.version) continue;
                    entry.version = version;
                }
                listeners.push_back(entry.callback);
            }
        }
        for (const auto& listener : listeners) {
            try {
                listener(body, version);
            } catch (const std::exception& error) {
                (void)std::fprintf(stderr, "switchboard: %s `%s` not delivered: %s\n",
                             watch ? "property value" : "signal", name.c_str(), error.what());
            } catch (...) {
                (void)std::fprintf(stderr, "switchboard: a callback for `%s` threw\n", name.c_str());
            }
        }
    }

    void fail_all(const std::string& why) {
        std::vector<detail::PendingRequests::Request> in_flight;
        {
            std::lock_guard lock(state_);
            in_flight = pending_.take_all();
        }
        detail::fail_requests(in_flight, [&why] { return transport_error(why); });
        goals_.fail_all(why);
    }

    void expire_loop() {
        std::unique_lock lock(state_);
        while (!closed_) {
            const auto earliest = pending_.earliest_deadline();
            if (earliest == Clock::time_point::max()) {
                timer_wake_.wait(lock);
                continue;
            }
            if (Clock::now() < earliest) {
                timer_wake_.wait_until(lock, earliest);
                continue;
            }
            auto overdue = pending_.take_overdue(Clock::now());
            lock.unlock();
            for (auto& request : overdue) {
                Outcome outcome;
                if (request.read) {
                    outcome.error = std::make_exception_ptr(RemoteError(
                        ErrorCode::ServiceUnavailable, "NoRetainedValue",
                        "the broker holds no value of property `" + request.property + "`"));
                } else {
                    outcome.error =
                        std::make_exception_ptr(TimeoutError("no answer before the deadline"));
                }
                request.done(std::move(outcome));
            }
            lock.lock();
        }
    }

    MqttUrl url_;
    ClientIdentity identity_;
    ClientOptions options_;
    std::string instance_;
    std::string correlation_prefix_;
    std::unique_ptr<Link> link_;
    std::thread timer_;
    mutable std::mutex state_;
    std::condition_variable timer_wake_;
    std::condition_variable discovery_;
    bool closed_ = false;
    Json info_;
    std::string presence_topic_;
    bool presence_known_ = false;
    bool server_online_ = true;
    std::uint64_t next_token_ = 1;
    /// The requests in flight, guarded by `state_`.
    detail::PendingRequests pending_;
    std::map<std::string, std::uint64_t> versions_;
    std::map<std::string, std::map<std::uint64_t, Entry>> subscribers_;
    std::map<std::string, std::map<std::uint64_t, Entry>> watchers_;
    /// Whether the action event topics are subscribed.
    std::atomic<bool> actions_subscribed_{false};
    /// The goals this client sent and that have not ended.
    detail::GoalRoutes goals_;
    /// Written once, while connecting.
    detail::Agreement agreement_;
};

std::unique_ptr<MqttClient> MqttClient::connect(const MqttUrl& url, ClientIdentity identity,
                                                ClientOptions options) {
    auto core = std::make_shared<MqttClientCore>(url, std::move(identity), options);
    try {
        core->open();
    } catch (...) {
        core->close();
        throw;
    }
    return std::unique_ptr<MqttClient>(new MqttClient(std::move(core)));
}

MqttClient::~MqttClient() {
    try {
        core_->close();
    } catch (...) {
        // A destructor cannot report it (a completion that threw while the calls in flight
        // were failed); the connection is closed either way.
    }
}

void MqttClient::call(const std::string& method, Json args, std::chrono::milliseconds timeout,
                      Completion done) {
    if (core_->agreement().refuse(detail::MemberKind::Method, method, done)) return;
    core_->call(method, args, timeout, std::move(done));
}
void MqttClient::get_property(const std::string& name, Completion done) {
    if (core_->agreement().refuse(detail::MemberKind::Property, name, done)) return;
    core_->get_property(name, std::move(done));
}
void MqttClient::set_property(const std::string& name, Json value, Completion done) {
    if (core_->agreement().refuse(detail::MemberKind::Property, name, done)) return;
    core_->set_property(name, std::move(value), std::move(done));
}
void MqttClient::send_command(const std::string& name, Json args) {
    core_->agreement().require(detail::MemberKind::Command, name);
    core_->send_command(name, args);
}
Subscription MqttClient::subscribe(const std::string& signal,
                                   std::function<void(const Json&)> on_signal) {
    core_->agreement().require(detail::MemberKind::Signal, signal);
    return core_->add_listener(false, signal,
                               [on_signal = std::move(on_signal)](const Json& values,
                                                                  std::uint64_t) { on_signal(values); });
}
Subscription MqttClient::watch(const std::string& property,
                               std::function<void(const Json&, std::uint64_t)> on_value) {
    core_->agreement().require(detail::MemberKind::Property, property);
    return core_->add_listener(true, property, std::move(on_value));
}
void MqttClient::send_goal(const std::string& action, const std::string& goal, Json args,
                           GoalEvents events, Completion accepted) {
    if (core_->agreement().refuse(detail::MemberKind::Action, action, accepted)) return;
    core_->send_goal(action, goal, std::move(args), std::move(events), std::move(accepted));
}

std::weak_ptr<GoalCanceller> MqttClient::goal_canceller() { return core_; }

bool MqttClient::connected() const { return core_->connected(); }
const ClientOptions& MqttClient::options() const { return core_->options(); }
const Json& MqttClient::server_info() const { return core_->info(); }
const std::string& MqttClient::client_id() const { return core_->client_id(); }

// ---------------------------------------------------------------------------------------------
// Server

/// Sends a goal's events to one client's event topic of the goal's action, at QoS 1.
class TopicFollower final : public detail::GoalFollower {
public:
    /// `prefix` is `client/{client_id}/{interface}/action/`; empty for an anonymous client,
    /// whose events go nowhere.
    TopicFollower(Link& link, std::string prefix) : link_(link), prefix_(std::move(prefix)) {}

    void goal_event(detail::GoalEventKind kind, const std::string& action, const Json& payload,
                    ErrorCode code) override {
        if (prefix_.empty()) return;
        Properties props;
        props.content_type_json();
        switch (kind) {
            case detail::GoalEventKind::Status:
                props.user("GoalEvent", "status");
                break;
            case detail::GoalEventKind::Feedback:
                props.user("GoalEvent", "feedback");
                break;
            case detail::GoalEventKind::Finished:
                props.user("GoalEvent", "finished")
                    .user("ReturnCode", std::to_string(static_cast<int>(code)));
                break;
        }
        link_.publish(prefix_ + action + "/event", payload.dump(), 1, false, props);
    }

private:
    Link& link_;
    std::string prefix_;
};

/// The state of one server: its link, property values, its goals, and the worker pool that
/// runs calls and goal requests.
class MqttServerCore {
public:
    MqttServerCore(const MqttUrl& url, ServerIdentity identity,
                   std::vector<PropertySpec> properties, Service& service, std::string address)
        : url_(url), identity_(std::move(identity)), service_(service),
          instance_(url.instance.value_or(identity_.instance)), address_(std::move(address)),
          goals_(service) {
        if (!is_topic_level(instance_)) throw TransportError("bad instance: " + instance_);
        for (auto& spec : properties) {
            properties_.emplace(spec.name, State{std::move(spec.initial), 1, spec.read_only});
        }
        description_ = Json::parse(identity_.description, nullptr, false);
        if (description_.is_discarded()) description_ = Json();
    }

    void start() {
        Link::Handlers handlers;
        handlers.message = [this](const Message& message) { dispatch(message); };
        handlers.connected = [this] { announce(true); };
        link_ = std::make_unique<Link>(url_, url_.client_id.value_or(random_uuid()),
                                       std::move(handlers));
        for (int i = 0; i < kServerWorkers; ++i) workers_.emplace_back([this] { work(); });
        advertiser_ = std::thread([this] { advertise_loop(); });
        const std::string prefix = identity_.interface + "/" + instance_ + "/";
        // Subscriptions are registered before the CONNACK so that its handler issues them.
        link_->subscribe(prefix + "method/+/request", 1, false);
        link_->subscribe(prefix + "property/+/update", 1, false);
        link_->subscribe(prefix + "command/+", 2, false);
        link_->subscribe(prefix + "action/+/+", 1, false);
        link_->open(std::chrono::milliseconds(10000));
    }

    void stop() {
        {
            std::lock_guard lock(jobs_mutex_);
            if (stopping_) return;
            stopping_ = true;
            jobs_ready_.notify_all();
            advert_wake_.notify_all();
        }
        // Goals end while the link is up, so that their followers hear how they ended.
        goals_.stop();
        for (auto& worker : workers_) {
            if (worker.joinable()) worker.join();
        }
        if (advertiser_.joinable()) advertiser_.join();
        if (link_) {
            link_->close([this] {
                std::vector<int> mids;
                Properties none;
                auto clear = [&](const std::string& topic) {
                    int mid = 0;
                    if (link_->publish(topic, "", 1, true, none, &mid)) mids.push_back(mid);
                };
                clear(topic("interface"));
                clear(topic("schema"));
                std::lock_guard lock(properties_mutex_);
                for (const auto& [name, state] : properties_) clear(value_topic(name));
                return mids;
            });
        }
    }

    void emit(const std::string& signal, const Json& values) {
        Properties props;
        props.content_type_json();
        if (!link_->publish(topic("signal/" + signal), values.dump(), 1, false, props)) {
            throw TransportError("not connected to the MQTT broker");
        }
    }

    void set_property(const std::string& name, const Json& value) {
        std::lock_guard lock(properties_mutex_);
        auto found = properties_.find(name);
        if (found == properties_.end()) throw DecodeError(name, "no such property");
        found->second.value = value;
        ++found->second.version;
        publish_value(found->first, found->second);
    }

    std::pair<Json, std::uint64_t> property(const std::string& name) const {
        std::lock_guard lock(properties_mutex_);
        auto found = properties_.find(name);
        if (found == properties_.end()) throw DecodeError(name, "no such property");
        return {found->second.value, found->second.version};
    }

    const std::string& address() const { return address_; }

private:
    struct State {
        Json value;
        std::uint64_t version = 1;
        bool read_only = false;
    };

    std::string topic(const std::string& rest) const {
        return identity_.interface + "/" + instance_ + "/" + rest;
    }
    std::string value_topic(const std::string& property) const {
        return topic("property/" + property + "/value");
    }

    /// Called with `properties_mutex_` held.
    void publish_value(const std::string& name, const State& state) {
        Properties props;
        props.content_type_json().user("PropertyVersion", std::to_string(state.version));
        link_->publish(value_topic(name), state.value.dump(), 1, true, props);
    }

    /// Publishes the interface info and description, and (with `values`) every property.
    void announce(bool values) {
        std::string info = "{";
        auto add = [&](const char* key, const Json& value) {
            if (info.size() > 1) info += ",";
            info += Json(key).dump() + ":" + value.dump();
        };
        std::string title = identity_.interface;
        if (description_.is_object()) {
            if (auto t = description_.find("title"); t != description_.end() && t->is_string()) {
                title = t->get<std::string>();
            }
        }
        add("interface_name", identity_.interface);
        add("title", title);
        add("version", identity_.version);
        add("instance", instance_);
        add("connection_topic", link_->presence_topic());
        add("timestamp", timestamp_now());
        add("hash", identity_.hash);
        if (!description_.is_null()) add("description", description_);
        info += "}";
        Properties props;
        props.content_type_json().expiry(kInfoExpirySeconds);
        link_->publish(topic("interface"), info, 1, true, props);
        if (!identity_.description.empty()) {
            link_->publish(topic("schema"), identity_.description, 1, true, props);
        }
        if (values) {
            std::lock_guard lock(properties_mutex_);
            for (const auto& [name, state] : properties_) publish_value(name, state);
        }
    }

    void advertise_loop() {
        std::unique_lock lock(jobs_mutex_);
        while (!stopping_) {
            if (advert_wake_.wait_for(lock, kAdvertInterval, [&] { return stopping_; })) break;
            lock.unlock();
            if (link_->is_connected()) announce(false);
            lock.lock();
        }
    }

    void dispatch(const Message& message) {
        const auto parts = levels(message.topic);
        if (parts.size() < 4 || parts[0] != identity_.interface || parts[1] != instance_) return;
        if (parts[2] == "method" && parts.size() == 5 && parts[4] == "request") {
            return enqueue([this, name = parts[3], message] { handle_call(name, message); }, message);
        }
        if (parts[2] == "property" && parts.size() == 5 && parts[4] == "update") {
            return handle_update(parts[3], message);
        }
        if (parts[2] == "command" && parts.size() == 4) {
            return enqueue([this, name = parts[3], message] { handle_command(name, message); },
                           message);
        }
        if (parts[2] == "action" && parts.size() == 5) {
            return enqueue([this, action = parts[3], request = parts[4],
                            message] { handle_goal(action, request, message); },
                           message);
        }
    }

    /// The follower of `client_id`: one per client, so that attaching twice does not double its
    /// events.
    std::shared_ptr<detail::GoalFollower> follower_of(const std::string& client_id) {
        std::lock_guard lock(followers_mutex_);
        auto& follower = followers_[client_id];
        if (!follower) {
            if (followers_.size() > kMaxFollowers) {
                // Forget the clients that follow no goal any more.
                std::erase_if(followers_, [](const auto& entry) {
                    return entry.second && entry.second.use_count() == 1;
                });
            }
            const std::string prefix = client_id.empty() || !is_topic_level(client_id)
                                           ? std::string()
                                           : "client/" + client_id + "/" + identity_.interface +
                                                 "/action/";
            follower = std::make_shared<TopicFollower>(*link_, prefix);
        }
        return follower;
    }

    /// A goal request (`goal`, `cancel` or `attach`), answered at QoS 1 on its response topic.
    void handle_goal(const std::string& action, const std::string& request,
                     const Message& message) {
        const Json body =
            message.json_content() ? Json::parse(message.payload, nullptr, false) : Json();
        const auto context = context_of(message);
        auto answer = [&](const detail::GoalAnswer& goal_answer) {
            if (goal_answer.code == ErrorCode::Success) {
                return respond(message, ErrorCode::Success, "", "", std::nullopt,
                               &goal_answer.payload, std::nullopt, 1);
            }
            std::optional<Json> details;
            if (auto found = goal_answer.payload.find("details");
                found != goal_answer.payload.end()) {
                details = *found;
            }
            respond(message, goal_answer.code, goal_answer.name,
                    goal_answer.payload.value("message", std::string()), details,
                    &goal_answer.payload, std::nullopt, 1);
        };
        if (request == "goal") {
            goals_.send(action, body, context, follower_of(context.client_id), answer);
        } else if (request == "cancel") {
            goals_.cancel(action, body, answer);
        } else if (request == "attach") {
            goals_.attach(action, body, follower_of(context.client_id), answer);
        }
    }

    void enqueue(std::function<void()> job, const Message& message) {
        {
            std::lock_guard lock(jobs_mutex_);
            if (stopping_) return;
            if (jobs_.size() < kServerQueueLimit) {
                jobs_.push_back(std::move(job));
                jobs_ready_.notify_one();
                return;
            }
        }
        if (message.has_response_topic) {
            respond(message, ErrorCode::ServiceUnavailable, "ServiceUnavailable",
                    "the server has too many requests queued", std::nullopt, nullptr);
        }
    }

    void work() {
        while (true) {
            std::function<void()> job;
            {
                std::unique_lock lock(jobs_mutex_);
                jobs_ready_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
                if (jobs_.empty()) return;  // stopping, and nothing left
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();
        }
    }

    static CallContext context_of(const Message& message) {
        CallContext context;
        if (const auto* id = message.user_property("ClientId")) {
            context.client_id = *id;
        } else if (message.has_response_topic) {
            const auto parts = levels(message.response_topic);
            if (parts.size() >= 2 && parts[0] == "client") context.client_id = parts[1];
        }
        return context;
    }

    /// Sends a reply to `request`'s response topic; success when `code` is `Success`.
    void respond(const Message& request, ErrorCode code, const std::string& name,
                 const std::string& text, const std::optional<Json>& details, const Json* body,
                 std::optional<std::uint64_t> version = std::nullopt, int qos = 0) {
        if (!request.has_response_topic) return;
        Properties props;
        props.content_type_json();
        if (request.has_correlation) props.correlation(request.correlation);
        props.user("ReturnCode", std::to_string(static_cast<int>(code)));
        if (version) props.user("PropertyVersion", std::to_string(*version));
        if (code != ErrorCode::Success) {
            props.user("DebugInfo", text);
            props.user("ErrorName", name);
            if (details) props.user("ErrorDetails", details->dump());
        }
        const std::string payload = body != nullptr ? body->dump() : "{}";
        link_->publish(request.response_topic, payload, qos, false, props);
    }

    void handle_call(const std::string& method, const Message& message) {
        const Json args = Json::parse(message.payload, nullptr, false);
        if (!args.is_object()) {
            return respond(message, ErrorCode::ServerDeserializationError,
                           error_names::invalid_arguments,
                           "invalid arguments for `" + method + "`: the arguments must be a JSON object",
                           std::nullopt, nullptr);
        }
        try {
            const Json result = service_.call(method, args, context_of(message));
            respond(message, ErrorCode::Success, "", "", std::nullopt, &result);
        } catch (const RemoteError& error) {
            respond(message, error.code(), error.name(), error.message(), error.details(), nullptr);
        } catch (const DecodeError& error) {
            respond(message, ErrorCode::ServerDeserializationError, error_names::invalid_arguments,
                    "invalid arguments for `" + method + "`: " + error.what(), std::nullopt,
                    nullptr);
        } catch (...) {
            respond(message, ErrorCode::ServerError, error_names::internal, error_names::internal_message,
                    std::nullopt, nullptr);
        }
    }

    void handle_command(const std::string& name, const Message& message) {
        if (!message.json_content()) {
            (void)std::fprintf(stderr, "switchboard: command `%s` dropped: content type %s\n",
                         name.c_str(), message.content_type.c_str());
            return;
        }
        const Json args = Json::parse(message.payload, nullptr, false);
        try {
            if (!args.is_object()) throw DecodeError("", "the arguments must be a JSON object");
            service_.command(name, args, context_of(message));
        } catch (const std::exception& error) {
            (void)std::fprintf(stderr, "switchboard: command `%s` failed: %s\n", name.c_str(), error.what());
        } catch (...) {
            (void)std::fprintf(stderr, "switchboard: command `%s` failed\n", name.c_str());
        }
    }

    void handle_update(const std::string& name, const Message& message) {
        std::lock_guard lock(properties_mutex_);
        auto found = properties_.find(name);
        if (found == properties_.end()) {
            return respond(message, ErrorCode::MethodNotFound, error_names::unknown_property,
                           "interface " + identity_.interface + " has no property `" + name + "`",
                           std::nullopt, nullptr);
        }
        State& state = found->second;
        auto refuse = [&](ErrorCode code, const std::string& error, const std::string& text) {
            respond(message, code, error, text, std::nullopt, &state.value, state.version);
        };
        if (state.read_only) {
            return refuse(ErrorCode::Unauthorized, error_names::read_only,
                          "property `" + name + "` is read-only");
        }
        if (!message.json_content()) {
            return refuse(ErrorCode::ServerDeserializationError, error_names::invalid_arguments,
                          "the update of `" + name + "` is not application/json");
        }
        const auto* version_text = message.user_property("PropertyVersion");
        if (version_text == nullptr) {
            return refuse(ErrorCode::OutOfSync, error_names::out_of_sync,
                          "the update of property `" + name + "` carries no PropertyVersion");
        }
        char* end = nullptr;
        const unsigned long long based_on = std::strtoull(version_text->c_str(), &end, 10);
        if (version_text->empty() || *end != '\0' || (*version_text)[0] == '-') {
            return refuse(ErrorCode::PayloadError, "InvalidPropertyVersion",
                          "PropertyVersion '" + *version_text + "' of the update of '" + name +
                              "' is not a non-negative integer");
        }
        Json value;
        try {
            value = service_.check_property(name, Json::parse(message.payload));
        } catch (const std::exception& error) {
            return refuse(ErrorCode::ServerDeserializationError, error_names::invalid_arguments,
                          std::string("invalid value for `") + name + "`: " + error.what());
        }
        if (based_on != state.version) {
            return refuse(ErrorCode::OutOfSync, error_names::out_of_sync,
                          "update of property `" + name + "` was based on version " +
                              std::to_string(based_on) + ", but the current version is " +
                              std::to_string(state.version));
        }
        state.value = std::move(value);
        ++state.version;
        publish_value(found->first, state);
        respond(message, ErrorCode::Success, "", "", std::nullopt, &state.value, state.version);
    }

    MqttUrl url_;
    ServerIdentity identity_;
    Service& service_;
    std::string instance_;
    std::string address_;
    Json description_;
    std::unique_ptr<Link> link_;
    mutable std::mutex properties_mutex_;
    std::map<std::string, State> properties_;
    std::mutex jobs_mutex_;
    /// Wakes the workers (a job, or stopping).
    std::condition_variable jobs_ready_;
    /// Wakes the advertiser (stopping); apart from `jobs_ready_` so that a job never wakes it.
    std::condition_variable advert_wake_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> workers_;
    std::thread advertiser_;
    std::mutex followers_mutex_;
    std::map<std::string, std::shared_ptr<detail::GoalFollower>> followers_;
    /// Declared last, so destroyed first: its goals use the link and the followers.
    detail::GoalBook goals_;
};

MqttServer::MqttServer(std::unique_ptr<MqttServerCore> core) : core_(std::move(core)) {}

std::unique_ptr<MqttServer> MqttServer::serve(const MqttUrl& url, ServerIdentity identity,
                                              std::vector<PropertySpec> properties,
                                              Service& service) {
    std::string address = "mqtt://" + url.host + ":" + std::to_string(url.port) +
                          "?instance=" + url.instance.value_or(identity.instance);
    auto core = std::make_unique<MqttServerCore>(url, std::move(identity), std::move(properties),
                                                 service, std::move(address));
    try {
        core->start();
    } catch (...) {
        core->stop();
        throw;
    }
    return std::unique_ptr<MqttServer>(new MqttServer(std::move(core)));
}

MqttServer::~MqttServer() { core_->stop(); }
void MqttServer::emit(const std::string& signal, const Json& values) { core_->emit(signal, values); }
void MqttServer::set_property(const std::string& name, const Json& value) {
    core_->set_property(name, value);
}
std::pair<Json, std::uint64_t> MqttServer::property(const std::string& name) const {
    return core_->property(name);
}
void MqttServer::stop() { core_->stop(); }
const std::string& MqttServer::address() const { return core_->address(); }

}  // namespace switchboard
