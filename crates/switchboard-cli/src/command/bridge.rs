//! `switchboard bridge CONFIG.yaml`: reads a bridge's configuration (two URLs and its routes),
//! runs the bridge until SIGINT or SIGTERM, and prints what each route did.

use std::{path::Path, time::Duration};

use serde::Deserialize;
use serde_json::json;
use switchboard::{
    Endpoint,
    bridge::{Bridge, BridgeError, BridgeOptions, Route, Side},
};
use switchboard_idl::english::with_article;

use crate::{cli::BridgeArgs, exit::Failure};

/// The instance an interface route exposes when its configuration names none.
const DEFAULT_INSTANCE: &str = "default";

/// A configuration file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Side A's URL.
    a: String,
    /// Side B's URL.
    b: String,
    /// Start even if a side is down, and run its routes once it is up.
    #[serde(default)]
    wait: bool,
    /// Messages each route holds on the way.
    queue: Option<usize>,
    /// How long a bridged call waits for the far side (`500ms`, `9s`).
    forward_timeout: Option<String>,
    /// Publishers each pattern route keeps open.
    max_publishers: Option<usize>,
    /// Publishes each topic or pattern route keeps on their way at once.
    in_flight: Option<usize>,
    /// What the bridge carries.
    routes: Vec<RouteConfig>,
}

/// One route, as written: exactly one of `topic`, `pattern`, `rpc` and `interface`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteConfig {
    topic: Option<String>,
    pattern: Option<String>,
    rpc: Option<String>,
    /// An interface whose service runs on the side opposite `served_on`.
    interface: Option<String>,
    /// The interface's service instance (default: `default`).
    instance: Option<String>,
    /// The side read (`a`, `b`, or for a topic `both`).
    from: Option<String>,
    /// The side the RPC is served on.
    served_on: Option<String>,
    /// The name on the other side (default: the same name).
    to: Option<String>,
    /// A pattern route's new prefix (default: names unchanged).
    prefix: Option<String>,
}

/// A configuration ready to run.
#[derive(Debug)]
pub(crate) struct Plan {
    a: Endpoint,
    b: Endpoint,
    routes: Vec<Route>,
    options: BridgeOptions,
}

/// Reads and checks the configuration at `path`; every problem is a [`Failure::Usage`] that
/// names the file and, where it can, the line or the route.
pub(crate) fn load(path: &Path) -> Result<Plan, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::Usage(format!("cannot read {shown}: {error}")))?;
    parse(&text).map_err(|error| Failure::Usage(format!("{shown}: {error}")))
}

/// Parses a configuration's text.
pub(crate) fn parse(text: &str) -> Result<Plan, String> {
    let config: Config = serde_saphyr::from_str(text).map_err(|error| error.to_string())?;
    let endpoint = |key: &str, url: &str| {
        Endpoint::parse(url).map_err(|error| format!("`{key}`: `{url}`: {error}"))
    };
    let (a, b) = (endpoint("a", &config.a)?, endpoint("b", &config.b)?);
    let mut options = BridgeOptions::default().wait(config.wait);
    if let Some(queue) = config.queue {
        if queue == 0 {
            return Err("`queue` must be at least 1".into());
        }
        options = options.queue(queue);
    }
    if let Some(max) = config.max_publishers {
        if max == 0 {
            return Err("`max_publishers` must be at least 1".into());
        }
        options = options.max_publishers(max);
    }
    if let Some(in_flight) = config.in_flight {
        if in_flight == 0 {
            return Err("`in_flight` must be at least 1".into());
        }
        options = options.in_flight(in_flight);
    }
    if let Some(timeout) = &config.forward_timeout {
        options = options.forward_timeout(
            duration(timeout).map_err(|error| format!("`forward_timeout`: {error}"))?,
        );
    }
    if config.routes.is_empty() {
        return Err("`routes` is empty: a bridge needs at least one route".into());
    }
    let mut routes = Vec::new();
    for (at, route) in config.routes.into_iter().enumerate() {
        routes.extend(route.into_routes().map_err(|error| format!("route {}: {error}", at + 1))?);
    }
    Ok(Plan { a, b, routes, options })
}

impl RouteConfig {
    fn into_routes(self) -> Result<Vec<Route>, String> {
        let side = |key: &str, value: Option<String>, both: bool| -> Result<Option<Side>, String> {
            match value.as_deref() {
                Some("a") => Ok(Some(Side::A)),
                Some("b") => Ok(Some(Side::B)),
                Some("both") if both => Ok(None),
                Some(other) => Err(format!(
                    "`{key}: {other}`: use `a` or `b`{}",
                    if both { " or `both`" } else { "" }
                )),
                None => Err(format!("`{key}` is missing: say which side (`a` or `b`)")),
            }
        };
        let unused = |key: &str, value: &Option<String>, kind: &str| match value {
            Some(_) => Err(format!("`{key}` does not apply to {} route", with_article(kind))),
            None => Ok(()),
        };
        if self.interface.is_none() {
            unused("instance", &self.instance, "topic, pattern or rpc")?;
        }
        match (self.topic, self.pattern, self.rpc, self.interface) {
            (Some(topic), None, None, None) => {
                unused("served_on", &self.served_on, "topic")?;
                unused("prefix", &self.prefix, "topic")?;
                let to = self.to.unwrap_or_else(|| topic.clone());
                Ok(match side("from", self.from, true)? {
                    Some(from) => vec![Route::topic(from, topic, to)],
                    None => {
                        vec![Route::topic(Side::A, &topic, &to), Route::topic(Side::B, to, topic)]
                    }
                })
            }
            (None, Some(pattern), None, None) => {
                unused("served_on", &self.served_on, "pattern")?;
                unused("to", &self.to, "pattern (it renames with `prefix`)")?;
                let from = side("from", self.from, false)?.expect("not `both`");
                Ok(vec![Route::pattern(from, pattern, self.prefix.unwrap_or_default())])
            }
            (None, None, Some(rpc), None) => {
                unused("from", &self.from, "rpc (it is `served_on` a side)")?;
                unused("prefix", &self.prefix, "rpc")?;
                let served_on = side("served_on", self.served_on, false)?.expect("not `both`");
                let to = self.to.unwrap_or_else(|| rpc.clone());
                Ok(vec![Route::rpc(served_on, rpc, to)])
            }
            (None, None, None, Some(interface)) => {
                unused("from", &self.from, "interface (it is `served_on` a side)")?;
                unused("to", &self.to, "interface (it keeps its name)")?;
                unused("prefix", &self.prefix, "interface")?;
                let served_on = side("served_on", self.served_on, false)?.expect("not `both`");
                let instance = self.instance.unwrap_or_else(|| DEFAULT_INSTANCE.to_owned());
                Ok(vec![Route::interface(served_on, interface, instance)])
            }
            _ => Err("give exactly one of `topic`, `pattern`, `rpc` and `interface`".into()),
        }
    }
}

/// Parses `500ms`, `9s`, `1m` (a number alone is seconds).
fn duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => match &text[at..] {
            "ms" => (&text[..at], 0.001),
            "s" => (&text[..at], 1.0),
            "m" => (&text[..at], 60.0),
            _ => return Err(format!("`{text}`: use ms, s or m")),
        },
        None => (text, 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(Duration::from_secs_f64(value * scale)),
        _ => Err(format!("`{text}` is not a positive duration")),
    }
}

/// `switchboard bridge`: runs until SIGINT or SIGTERM, then prints each route's counts.
pub(crate) async fn run(args: &BridgeArgs) -> Result<(), Failure> {
    let Plan { a, b, routes, options } = load(&args.config)?;
    let names: Vec<String> = routes.iter().map(ToString::to_string).collect();
    let stop = switchboard::server::shutdown_signal()
        .map_err(|error| Failure::Local(format!("cannot watch for SIGINT and SIGTERM: {error}")))?;
    let bridge = Bridge::start(a, b, routes, options).await.map_err(|error| match error {
        BridgeError::InvalidRoute { .. } => {
            Failure::Usage(format!("{}: {error}", args.config.display()))
        }
        error => Failure::Transport(error.to_string()),
    })?;
    println!("{}", json!({ "bridge": "running", "routes": names }));
    stop.await;
    for counts in bridge.counts() {
        println!(
            "{}",
            json!({
                "route": counts.route,
                "forwarded": counts.forwarded,
                "dropped": counts.dropped,
                "looped": counts.looped,
                "failed": counts.failed,
            })
        );
    }
    bridge.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(text).expect_err("refused")
    }

    #[test]
    fn a_full_config_is_read() {
        let plan = parse(
            "a: mqtt://127.0.0.1:1883\nb: redis://127.0.0.1:6379\nwait: true\nqueue: 8\n\
             in_flight: 3\nforward_timeout: 500ms\nroutes:\n  - { topic: x.y, from: both, to: z }\n  \
             - { pattern: s.*, from: a, prefix: site.s }\n  - { rpc: r, served_on: b, to: q }\n  \
             - { interface: Thermostat, instance: kitchen, served_on: b }\n  \
             - { interface: Clock, served_on: a }\n",
        )
        .expect("a valid config");
        let routes: Vec<String> = plan.routes.iter().map(ToString::to_string).collect();
        assert_eq!(
            routes,
            [
                "topic a:x.y -> b:z",
                "topic b:z -> a:x.y",
                "pattern a:s.* -> b:site.s",
                "rpc b:r -> a:q",
                "interface b:Thermostat/kitchen -> a",
                "interface a:Clock/default -> b",
            ]
        );
        assert_eq!((plan.options.queue, plan.options.wait), (8, true));
        assert_eq!(plan.options.in_flight, 3);
        assert_eq!(plan.options.forward_timeout, Duration::from_millis(500));
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let head = "a: unix:///tmp/a\nb: unix:///tmp/b\n";
        let cases = [
            ("a: unix:///tmp/a\nroutes: []\n", "missing field `b`"),
            (&format!("{head}routes: []\n"), "`routes` is empty"),
            (&format!("{head}colour: red\nroutes: []\n"), "unknown field `colour`"),
            ("a: nope://x\nb: unix:///tmp/b\nroutes: []\n", "`a`: `nope://x`"),
            (&format!("{head}routes:\n  - {{ topic: x }}\n"), "route 1: `from` is missing"),
            (
                &format!("{head}routes:\n  - {{ topic: x, from: c }}\n"),
                "`from: c`: use `a` or `b` or `both`",
            ),
            (&format!("{head}routes:\n  - {{ topic: x, rpc: y, from: a }}\n"), "exactly one of"),
            (&format!("{head}routes:\n  - {{ rpc: x, from: a }}\n"), "`from` does not apply"),
            (&format!("{head}routes:\n  - {{ interface: X }}\n"), "`served_on` is missing"),
            (
                &format!("{head}routes:\n  - {{ interface: X, from: a, served_on: b }}\n"),
                "`from` does not apply to an interface",
            ),
            (
                &format!("{head}routes:\n  - {{ rpc: x, instance: k, served_on: a }}\n"),
                "`instance` does not apply",
            ),
            (&format!("{head}routes:\n  - {{ pattern: x.*, from: both }}\n"), "use `a` or `b`"),
            (
                &format!(
                    "{head}forward_timeout: 3 weeks\nroutes:\n  - {{ rpc: x, served_on: a }}\n"
                ),
                "use ms, s or m",
            ),
            (&format!("{head}queue: 0\nroutes:\n  - {{ rpc: x, served_on: a }}\n"), "at least 1"),
            (
                &format!("{head}in_flight: 0\nroutes:\n  - {{ rpc: x, served_on: a }}\n"),
                "`in_flight` must be at least 1",
            ),
            ("a: [unclosed\n", "line 1"),
        ];
        for (text, expected) in cases {
            let error = error(text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
