use super::*;

#[test]
fn durations_format_like_stinger_ipc() {
    let cases = [
        (TimeDelta::milliseconds(1500), "PT1.5S"),
        (TimeDelta::seconds(123), "PT2M3S"),
        (TimeDelta::hours(26), "P1DT2H"),
        (TimeDelta::zero(), "PT0S"),
        (TimeDelta::seconds(-1), "-PT1S"),
        (TimeDelta::hours(26) + TimeDelta::microseconds(5), "P1DT2H0.000005S"),
        (TimeDelta::days(3), "P3D"),
        (TimeDelta::nanoseconds(1), "PT0.000000001S"),
    ];
    for (value, text) in cases {
        assert_eq!(format_duration(&value), text);
        assert_eq!(parse_duration(text).unwrap(), value, "{text}");
    }
}

#[test]
fn durations_accept_other_forms() {
    assert_eq!(parse_duration("P1M").unwrap(), TimeDelta::days(30));
    assert_eq!(parse_duration("PT1H0.5S").unwrap(), TimeDelta::milliseconds(3_600_500));
    assert_eq!(parse_duration("01:02:03.5").unwrap(), TimeDelta::milliseconds(3_723_500));
    for bad in ["", "P", "PT", "1.5", "PTS", "P1H", "PT1.5", "PT-1S", "P1DT", "12:3:00"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn datetimes_keep_nanoseconds_and_accept_offsets() {
    let value = parse_datetime("2024-02-29T12:00:00.123456789Z").unwrap();
    assert_eq!(format_datetime(&value), "2024-02-29T12:00:00.123456789Z");
    assert_eq!(
        parse_datetime("2024-02-29T14:00:00+02:00").unwrap(),
        parse_datetime("2024-02-29T12:00:00Z").unwrap()
    );
    assert_eq!(
        parse_datetime("2024-02-29 12:00:00").unwrap(),
        parse_datetime("2024-02-29T12:00:00Z").unwrap()
    );
    assert_eq!(
        format_datetime(&parse_datetime("2025-01-02T03:04:05.678Z").unwrap()),
        "2025-01-02T03:04:05.678Z"
    );
    for bad in ["2024-02-29", "1700000000", "yesterday", "2024-02-30T00:00:00Z"] {
        assert!(parse_datetime(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn empty_accepts_any_object() {
    assert_eq!(decode::<Empty>(b"{}").unwrap(), Empty {});
    assert_eq!(decode::<Empty>(br#"{"later":1}"#).unwrap(), Empty {});
    assert_eq!(&encode(&Empty {}).unwrap()[..], b"{}");
}

proptest::proptest! {
    #[test]
    fn durations_round_trip(secs in -10_000_000_000i64..10_000_000_000, nanos in 0u32..1_000_000_000) {
        let value = TimeDelta::new(secs, nanos).unwrap();
        proptest::prop_assert_eq!(parse_duration(&format_duration(&value)).unwrap(), value);
    }

    #[test]
    fn duration_parser_never_panics(text in "\\PC{0,24}") {
        let _ = parse_duration(&text);
        let _ = parse_datetime(&text);
    }
}
