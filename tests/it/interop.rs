//! Interoperability with StingerIPC's generated Python peers over MQTT (to be written).
