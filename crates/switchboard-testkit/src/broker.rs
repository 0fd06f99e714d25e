//! Access to the MQTT brokers tests run against: the shared loopback broker and private ones started per test (to be written).
