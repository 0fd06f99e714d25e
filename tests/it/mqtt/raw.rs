//! A bare rumqttc v5 client, to send exactly the bytes a test wants and see exactly what we send.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::{
    AsyncClient, Event, MqttOptions,
    mqttbytes::{
        QoS,
        v5::{Filter, Packet, Publish, PublishProperties, SubscribeProperties},
    },
};
use tokio::sync::mpsc;

use crate::suite::STEP;

/// A raw MQTT v5 connection and everything it receives.
pub(crate) struct Raw {
    pub(crate) client: AsyncClient,
    incoming: mpsc::UnboundedReceiver<Packet>,
    /// Messages received while waiting for another topic, kept for later.
    skipped: Vec<Publish>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn host_port(url: &str) -> (String, u16) {
    let rest = url.strip_prefix("mqtt://").expect("an mqtt:// URL");
    let rest = rest.split('?').next().unwrap();
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "1883"));
    (host.to_owned(), port.parse().expect("a port"))
}

impl Raw {
    pub(crate) async fn connect(url: &str, client_id: &str) -> Raw {
        let (host, port) = host_port(url);
        let mut options = MqttOptions::new(client_id, host, port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(Some(1 << 24));
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (tx, incoming) = mpsc::unbounded_channel();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if let Some(ready) = ready_tx.take() {
                            let _ = ready.send(());
                        }
                    }
                    Ok(Event::Incoming(packet)) => {
                        if tx.send(packet).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(STEP, ready).await.expect("raw client connects").unwrap();
        Raw { client, incoming, skipped: Vec::new(), task }
    }

    /// Subscribes with a subscription identifier and waits for the SUBACK.
    pub(crate) async fn subscribe(&mut self, filter: &str) {
        self.subscribe_qos(filter, QoS::AtLeastOnce).await;
    }

    /// [`subscribe`](Self::subscribe) at another maximum QoS.
    pub(crate) async fn subscribe_qos(&mut self, filter: &str, qos: QoS) {
        let properties = SubscribeProperties { id: Some(7), user_properties: vec![] };
        self.client.subscribe_with_properties(filter, qos, properties).await.unwrap();
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(Packet::SubAck(_))) => return,
                Ok(Some(_)) => continue,
                _ => panic!("no SUBACK for {filter}"),
            }
        }
    }

    pub(crate) async fn publish(
        &self,
        topic: &str,
        retain: bool,
        payload: impl Into<Bytes>,
        properties: PublishProperties,
    ) {
        self.client
            .publish_with_properties(topic, QoS::AtLeastOnce, retain, payload.into(), properties)
            .await
            .unwrap();
    }

    /// The next message on `topic` (others are skipped).
    pub(crate) async fn next_on(&mut self, topic: &str) -> Publish {
        self.try_next_on(topic, STEP)
            .await
            .unwrap_or_else(|| panic!("no message on {topic} within {STEP:?}"))
    }

    pub(crate) async fn try_next_on(&mut self, topic: &str, wait: Duration) -> Option<Publish> {
        if let Some(i) = self.skipped.iter().position(|p| p.topic == topic.as_bytes()) {
            return Some(self.skipped.remove(i));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(Packet::Publish(p))) if p.topic == topic.as_bytes() => return Some(p),
                Ok(Some(Packet::Publish(p))) => self.skipped.push(p),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Subscribes at QoS 2 with "retain as published", so each message arrives with the QoS and
    /// the retain flag its sender published it with.
    pub(crate) async fn subscribe_as_published(&mut self, filters: &[String]) {
        let as_published = filters.iter().map(|path| Filter {
            preserve_retain: true,
            ..Filter::new(path.clone(), QoS::ExactlyOnce)
        });
        let properties = SubscribeProperties { id: Some(7), user_properties: vec![] };
        self.client.subscribe_many_with_properties(as_published, properties).await.unwrap();
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(Packet::SubAck(_))) => return,
                Ok(Some(Packet::Publish(p))) => self.skipped.push(p),
                Ok(Some(_)) => continue,
                _ => panic!("no SUBACK for {filters:?}"),
            }
        }
    }

    /// Like [`subscribe`](Self::subscribe), but keeps the messages that arrive meanwhile (the
    /// retained ones of earlier subscriptions) for [`drain`](Self::drain).
    pub(crate) async fn subscribe_keeping(&mut self, filter: &str) {
        let properties = SubscribeProperties { id: Some(7), user_properties: vec![] };
        self.client.subscribe_with_properties(filter, QoS::AtLeastOnce, properties).await.unwrap();
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(Packet::SubAck(_))) => return,
                Ok(Some(Packet::Publish(p))) => self.skipped.push(p),
                Ok(Some(_)) => continue,
                _ => panic!("no SUBACK for {filter}"),
            }
        }
    }

    /// Returns once the broker has handled everything sent before: it answers a SUBSCRIBE only
    /// after the packets ahead of it on the connection.
    pub(crate) async fn flush(&mut self) {
        self.subscribe("switchboard-tests/flush").await;
    }

    /// Every message received within `wait`.
    pub(crate) async fn drain(&mut self, wait: Duration) -> Vec<Publish> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = std::mem::take(&mut self.skipped);
        while let Ok(Some(packet)) = tokio::time::timeout_at(deadline, self.incoming.recv()).await {
            if let Packet::Publish(p) = packet {
                out.push(p);
            }
        }
        out
    }
}

/// Request properties as a StingerIPC client sends them.
pub(crate) fn request(response_topic: &str, correlation: &[u8]) -> PublishProperties {
    PublishProperties {
        content_type: Some("application/json".into()),
        response_topic: Some(response_topic.into()),
        correlation_data: Some(Bytes::copy_from_slice(correlation)),
        ..Default::default()
    }
}

/// A user property of a received message.
pub(crate) fn user(publish: &Publish, name: &str) -> Option<String> {
    publish
        .properties
        .as_ref()?
        .user_properties
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

pub(crate) fn text(publish: &Publish) -> String {
    String::from_utf8_lossy(&publish.payload).into_owned()
}

/// Removes every retained message under any `…/{instance}/…` and the test's presence topics,
/// so the shared broker stays tidy after tests whose servers were never shut down.
pub(crate) async fn clear_retained(url: &str, instance: &str) {
    let mut raw = Raw::connect(url, &format!("cleanup-{instance}")).await;
    for filter in [format!("+/{instance}/#"), format!("+/+/{instance}/#")] {
        raw.subscribe_keeping(&filter).await;
    }
    let retained: Vec<_> =
        raw.drain(Duration::from_millis(200)).await.into_iter().filter(|p| p.retain).collect();
    for p in retained {
        let topic = String::from_utf8_lossy(&p.topic).into_owned();
        raw.publish(&topic, true, Bytes::new(), PublishProperties::default()).await;
    }
    raw.flush().await;
    let _ = raw.client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
}
