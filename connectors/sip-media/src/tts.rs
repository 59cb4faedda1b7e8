//! The brief, spoken by a local TTS command and made G.711: the command is
//! run as `<command> -v <voice> --stdout` with the text on its standard
//! input (espeak-ng's interface; no shell, and a text starting with `-` is
//! never read as an option), and writes a WAV on its standard output.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{MediaError, SAMPLE_RATE, g711, resample, wav};

/// The most WAV bytes read from the command: ten minutes of 22050 Hz.
const MAX_WAV_BYTES: u64 = 22050 * 2 * 600;

/// `text` spoken with `voice` by `command`, as 8 kHz µ-law, within
/// `timeout`.
pub async fn synthesize(
    command: &str,
    voice: &str,
    text: &str,
    timeout: Duration,
) -> Result<Vec<u8>, MediaError> {
    let bytes = tokio::time::timeout(timeout, run(command, voice, text))
        .await
        .map_err(|_| MediaError::TtsTimedOut {
            command: command.to_owned(),
            timeout,
        })??;
    let pcm = wav::parse(&bytes)?;
    if pcm.samples.is_empty() {
        return Err(MediaError::TtsFailed {
            command: command.to_owned(),
            detail: "it wrote no audio".into(),
        });
    }
    let samples = resample::resample(&pcm.samples, pcm.rate, SAMPLE_RATE);
    Ok(g711::encode_all(&samples))
}

async fn run(command: &str, voice: &str, text: &str) -> Result<Vec<u8>, MediaError> {
    let spawn_error = |source| MediaError::TtsSpawn {
        command: command.to_owned(),
        source,
    };
    let mut child = tokio::process::Command::new(command)
        .args(["-v", voice, "--stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let mut stdin = child.stdin.take().ok_or_else(|| MediaError::TtsFailed {
        command: command.to_owned(),
        detail: "no standard input".into(),
    })?;
    let text = text.to_owned();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(text.as_bytes()).await;
        // Dropping stdin closes it: the command speaks what it read.
    });
    let mut stdout = Vec::new();
    if let Some(out) = child.stdout.take() {
        out.take(MAX_WAV_BYTES)
            .read_to_end(&mut stdout)
            .await
            .map_err(spawn_error)?;
    }
    let mut stderr = String::new();
    if let Some(err) = child.stderr.take() {
        let _ = err.take(4096).read_to_string(&mut stderr).await;
    }
    let _ = writer.await;
    let status = child.wait().await.map_err(spawn_error)?;
    // espeak-ng exits 0 for a voice it does not know, and says so on
    // standard error with no audio: both are failures.
    if !status.success() || stdout.is_empty() {
        return Err(MediaError::TtsFailed {
            command: command.to_owned(),
            detail: format!("{status}: {}", stderr.trim()),
        });
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in TTS command writing a 22050 Hz WAV of `samples` of 1000.
    fn fake_tts(dir: &std::path::Path, samples: usize) -> String {
        let wav = dir.join("out.wav");
        std::fs::write(
            &wav,
            wav::write(22050, 1, &vec![1000; samples], Some(0x7fff_f000)),
        )
        .expect("write");
        let script = dir.join("tts");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$1\" = -v ] && [ \"$3\" = --stdout ] || exit 3\ncat > {dir}/text\ncat {wav}\n",
                dir = dir.display(),
                wav = wav.display()
            ),
        )
        .expect("write");
        make_executable(&script);
        script.display().to_string()
    }

    fn make_executable(path: &std::path::Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[tokio::test]
    async fn the_command_gets_the_text_on_stdin_and_its_wav_becomes_8k_ulaw() {
        let dir = tempfile::tempdir().expect("tempdir");
        let command = fake_tts(dir.path(), 22050);
        let audio = synthesize(
            &command,
            "en-us",
            "-v not an option",
            Duration::from_secs(10),
        )
        .await
        .expect("synthesized");
        assert_eq!(audio.len(), 8000, "one second at 8 kHz");
        assert!(audio.iter().all(|&code| code == g711::encode(1000)));
        let text = std::fs::read_to_string(dir.path().join("text")).expect("text");
        assert_eq!(text, "-v not an option");
    }

    #[tokio::test]
    async fn a_missing_command_or_one_without_audio_is_an_error() {
        let missing = synthesize("/nonexistent/tts", "en", "hi", Duration::from_secs(5)).await;
        assert!(
            matches!(missing, Err(MediaError::TtsSpawn { .. })),
            "{missing:?}"
        );
        let silent = synthesize("true", "en", "hi", Duration::from_secs(5)).await;
        assert!(
            matches!(silent, Err(MediaError::TtsFailed { .. })),
            "{silent:?}"
        );
        let slow = synthesize("sleep", "en", "hi", Duration::from_millis(100)).await;
        // `sleep -v …` fails at once on most systems; either way no audio.
        assert!(slow.is_err());
    }
}
