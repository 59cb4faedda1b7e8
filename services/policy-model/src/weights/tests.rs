use super::*;

fn sample() -> Weights {
    let features = FeatureConfig {
        buckets_log2: 8,
        char_min: 1,
        char_max: 4,
        skip_max: 3,
        prefix_len: 5,
        negation_window: 3,
    };
    let mut rows = vec![[0i8; LABELS]; features.buckets()];
    rows[3] = [1, -2, 0, 127];
    rows[200] = [-127, 0, 0, 0];
    let p = LabelParams {
        bias: -1.5,
        scale: 0.02,
        threshold: 0.5,
    };
    Weights {
        features,
        labels: [p; LABELS],
        rows,
    }
}

#[test]
fn crc32_matches_the_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn leb128_round_trips() {
    for v in [0, 1, 127, 128, 300, 1 << 21, u32::MAX] {
        let mut out = Vec::new();
        write_leb128(&mut out, v);
        assert_eq!(read_leb128(&out), Some((v, out.len())));
    }
    assert_eq!(read_leb128(&[0x80]), None);
    assert_eq!(read_leb128(&[0xff, 0xff, 0xff, 0xff, 0x7f]), None);
}

#[test]
fn encode_decode_round_trips() {
    let w = sample();
    let bytes = w.encode();
    assert_eq!(Weights::decode(&bytes), Ok(w));
}

#[test]
fn damaged_files_are_refused() {
    let good = sample().encode();

    assert_eq!(
        Weights::decode(&good[..10]),
        Err(WeightsError::TooShort { len: 10 })
    );
    let huge = vec![0u8; MAX_WEIGHTS_BYTES + 1];
    assert!(matches!(
        Weights::decode(&huge),
        Err(WeightsError::TooLarge { .. })
    ));

    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(Weights::decode(&bad), Err(WeightsError::BadMagic));

    let mut bad = good.clone();
    bad[4] = 9;
    assert_eq!(
        Weights::decode(&bad),
        Err(WeightsError::UnsupportedVersion(9))
    );

    // Every single flipped bit past the version is caught by the checksum.
    for at in 6..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        let err = Weights::decode(&bad).expect_err("a flipped bit must be refused");
        assert!(
            matches!(err, WeightsError::ChecksumMismatch { .. }),
            "{at}: {err}"
        );
    }

    let mut cut = good[..good.len() - 9].to_vec();
    let crc = crc32(&cut);
    cut.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        Weights::decode(&cut),
        Err(WeightsError::Malformed(_))
    ));
}

#[test]
fn fields_out_of_range_are_refused_even_with_a_good_checksum() {
    let good = sample().encode();
    let reseal = |mut body: Vec<u8>| {
        body.truncate(body.len() - TRAILER);
        let crc = crc32(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    };
    let mut bad = good.clone();
    bad[6] = 30;
    assert!(matches!(
        Weights::decode(&reseal(bad)),
        Err(WeightsError::Malformed(_))
    ));
    let mut bad = good.clone();
    bad[20..24].copy_from_slice(&2.0f32.to_le_bytes());
    let err = Weights::decode(&reseal(bad)).expect_err("threshold 2 refused");
    assert!(err.to_string().contains("threshold"), "{err}");
    let mut bad = good.clone();
    bad[11] = 0x95;
    let err = Weights::decode(&reseal(bad)).expect_err("negation window 9 refused");
    assert!(err.to_string().contains("negation"), "{err}");
    let mut bad = good.clone();
    bad[4] = 1;
    assert!(matches!(
        Weights::decode(&reseal(bad)),
        Err(WeightsError::Malformed(_))
    ));
    let mut bad = good;
    bad[60..64].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        Weights::decode(&reseal(bad)),
        Err(WeightsError::Malformed(_))
    ));
}
