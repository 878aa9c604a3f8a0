//! The user's answer to a question asked on the terminal (apply's `yes`).
//! Reading stdin blocks until a line comes, so the read runs on tokio's
//! blocking pool: the runtime keeps serving its other tasks (timers, signal
//! handling) while the user thinks.
//!
//! It reads one line and returns it; asking the question, and deciding what
//! the answer means, are the caller's.

use std::io::{self, Read};

/// The next line of `input` (with its `\n`, if any; empty at end of input),
/// read off the runtime. Reads byte by byte, so nothing after the line is
/// taken from `input`.
pub async fn read_line<R: Read + Send + 'static>(input: R) -> io::Result<String> {
    tokio::task::spawn_blocking(move || read_line_blocking(input))
        .await
        .map_err(io::Error::other)?
}

fn read_line_blocking<R: Read>(mut input: R) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use super::*;

    #[test]
    fn reads_one_line_and_leaves_the_rest() {
        let mut input: &[u8] = b"yes\nmore";
        assert_eq!(read_line_blocking(&mut input).unwrap(), "yes\n");
        assert_eq!(input, b"more");
        assert_eq!(read_line_blocking(&mut input).unwrap(), "more");
        assert_eq!(read_line_blocking(&mut input).unwrap(), "");
    }

    /// On a one-thread runtime, the answer comes from a task of that same
    /// runtime: it can only be written if the wait for it does not block the
    /// thread. Were it blocked, the only other writer answers `starved`
    /// seconds later, so the test fails instead of hanging.
    #[tokio::test(flavor = "current_thread")]
    async fn the_runtime_keeps_serving_tasks_while_the_prompt_waits() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let mut watchdog = writer.try_clone().unwrap();
        let answer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            writer.write_all(b"yes\n").unwrap();
        });
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            let _ = watchdog.write_all(b"starved\n");
        });
        let line = read_line(reader).await.unwrap();
        assert_eq!(
            line, "yes\n",
            "the prompt's wait blocked the runtime: its timer never fired"
        );
        answer.await.unwrap();
    }
}
