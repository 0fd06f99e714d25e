//! Dotted topic filters, the one matcher for every place that reads them: `*` stands for one
//! segment and a last `>` for all the rest, and commlib-py's reading, where a last `*` also
//! takes all the rest.

/// How a filter's wildcards read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wildcards {
    /// The brokered layer's (and NATS's) reading: `*` is one segment wherever it stands, and
    /// a last `>` is one or more.
    Layer,
    /// commlib-py's reading of a pattern subscription: as [`Wildcards::Layer`], except that a
    /// last `*` is one or more segments too (`sensors.*` matches `sensors.front.temp`).
    Commlib,
}

/// Whether `topic` matches `filter`, read as `wildcards` says. A filter without wildcards
/// matches itself only; a wildcard always stands for at least one segment.
pub fn matches(filter: &str, topic: &str, wildcards: Wildcards) -> bool {
    let mut topic = topic.split('.');
    let mut filter = filter.split('.').peekable();
    while let Some(part) = filter.next() {
        let last = filter.peek().is_none();
        let rest = part == ">" || (last && part == "*" && wildcards == Wildcards::Commlib);
        match (part, topic.next()) {
            (_, Some(_)) if rest => return true,
            ("*", Some(_)) => {}
            (literal, Some(segment)) if literal == segment => {}
            _ => return false,
        }
    }
    topic.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::{Wildcards::*, matches};

    #[test]
    fn literal_filters_match_themselves_only() {
        for wildcards in [Layer, Commlib] {
            assert!(matches("a.b.c", "a.b.c", wildcards));
            assert!(!matches("a.b.c", "a.b", wildcards));
            assert!(!matches("a.b", "a.b.c", wildcards));
            assert!(!matches("a.b", "a.x", wildcards));
        }
    }

    #[test]
    fn a_star_is_one_segment_and_a_last_gt_the_rest() {
        for wildcards in [Layer, Commlib] {
            assert!(matches("a.*.c", "a.b.c", wildcards));
            assert!(!matches("a.*.c", "a.b.c.d", wildcards));
            assert!(!matches("a.*.c", "x.b.c", wildcards));
            assert!(matches("a.>", "a.b", wildcards));
            assert!(matches("a.>", "a.b.c", wildcards));
            assert!(!matches("a.>", "a", wildcards), "a wildcard is at least one segment");
            assert!(matches(">", "a.b", wildcards));
            assert!(matches("Clock.*.signal.>", "Clock.k.signal.tick.x", wildcards));
            assert!(!matches("Clock.*.signal.>", "Clock.k.signal", wildcards));
            assert!(!matches("Clock.*.signal.>", "Clock.k.x.signal.tick", wildcards));
            assert!(!matches("a.*", "a", wildcards));
        }
    }

    #[test]
    fn only_commlib_reads_a_last_star_as_the_rest() {
        assert!(!matches("sensors.*", "sensors.front.temp", Layer));
        assert!(matches("sensors.*", "sensors.front.temp", Commlib));
        assert!(matches("sensors.*", "sensors.front", Layer));
        assert!(matches("sensors.*", "sensors.front", Commlib));
        assert!(!matches("sensors.*", "sensors", Commlib));
        assert!(
            !matches("sensors.*.temp", "sensors.front.temp.raw", Commlib),
            "a star inside a pattern stays one segment"
        );
    }
}
