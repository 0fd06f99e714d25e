//! The shared suite over MQTT v5, plus broker fault tests (to be written).
