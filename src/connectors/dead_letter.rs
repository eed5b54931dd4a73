//! Where a source puts records it cannot decode: verbatim, one per line in a
//! file (`dead_letter = 'path'`), or one per message on a Kafka topic
//! (`dead_letter_topic = 'name'`, with the position and reason as headers).

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::kafka::DeadLetterProducer;
use crate::error::{Result, SluiceError};
use crate::sql::Options;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterSpec {
    File(PathBuf),
    Kafka {
        topic: String,
        bootstrap_servers: String,
    },
}

impl DeadLetterSpec {
    pub fn take(options: &mut Options) -> Result<Option<DeadLetterSpec>> {
        let file = options.take("dead_letter");
        let topic = options.take("dead_letter_topic");
        let servers = options.take("dead_letter_bootstrap_servers");
        match (file, topic) {
            (Some(_), Some(_)) => Err(SluiceError::Options(
                "give either 'dead_letter' (a file) or 'dead_letter_topic' (a Kafka topic), not both"
                    .into(),
            )),
            (Some(path), None) => {
                if servers.is_some() {
                    return Err(SluiceError::Options(
                        "'dead_letter_bootstrap_servers' only applies with 'dead_letter_topic'".into(),
                    ));
                }
                Ok(Some(DeadLetterSpec::File(PathBuf::from(path))))
            }
            (None, Some(topic)) => {
                let bootstrap_servers = servers
                    .or_else(|| options.get("bootstrap_servers").map(str::to_string))
                    .ok_or_else(|| {
                        SluiceError::Options(
                            "'dead_letter_topic' needs 'dead_letter_bootstrap_servers' \
                             (or a Kafka source's 'bootstrap_servers')"
                                .into(),
                        )
                    })?;
                Ok(Some(DeadLetterSpec::Kafka {
                    topic,
                    bootstrap_servers,
                }))
            }
            (None, None) => {
                if servers.is_some() {
                    return Err(SluiceError::Options(
                        "'dead_letter_bootstrap_servers' only applies with 'dead_letter_topic'".into(),
                    ));
                }
                Ok(None)
            }
        }
    }

    pub async fn open(&self) -> Result<DeadLetterWriter> {
        match self {
            DeadLetterSpec::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir).await.map_err(|e| {
                        SluiceError::io(
                            format!("creating dead-letter directory {}", dir.display()),
                            e,
                        )
                    })?;
                }
                let file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|e| {
                        SluiceError::io(format!("opening dead-letter file {}", path.display()), e)
                    })?;
                Ok(DeadLetterWriter::File {
                    path: path.clone(),
                    file: Mutex::new(tokio::io::BufWriter::new(file)),
                })
            }
            DeadLetterSpec::Kafka {
                topic,
                bootstrap_servers,
            } => Ok(DeadLetterWriter::Kafka(DeadLetterProducer::new(
                bootstrap_servers,
                topic,
            )?)),
        }
    }
}

pub enum DeadLetterWriter {
    File {
        path: PathBuf,
        file: Mutex<tokio::io::BufWriter<tokio::fs::File>>,
    },
    Kafka(DeadLetterProducer),
}

impl DeadLetterWriter {
    pub async fn write(&self, record: &[u8], position: &str, reason: &str) -> Result<()> {
        match self {
            DeadLetterWriter::File { path, file } => {
                let mut f = file.lock().await;
                let io =
                    |e| SluiceError::io(format!("writing dead-letter file {}", path.display()), e);
                f.write_all(record).await.map_err(io)?;
                f.write_all(b"\n").await.map_err(io)
            }
            DeadLetterWriter::Kafka(p) => p.send(record, position, reason).await,
        }
    }

    pub async fn flush(&self) -> Result<()> {
        match self {
            DeadLetterWriter::File { path, file } => file.lock().await.flush().await.map_err(|e| {
                SluiceError::io(format!("writing dead-letter file {}", path.display()), e)
            }),
            DeadLetterWriter::Kafka(_) => Ok(()),
        }
    }
}
