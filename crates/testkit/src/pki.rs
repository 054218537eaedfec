//! Test certificates made with the `openssl` command at test time: a CA, a
//! server certificate for 127.0.0.1 and localhost that it signed, and a second
//! CA that signed nothing (for "trusts the wrong CA" cases). Used by the HTTPS
//! listener tests and by the Kafka TLS front end. Nothing is committed: keys
//! live in a temp directory for as long as the [`TestPki`] does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

/// The PEM files of a test CA, a server certificate for 127.0.0.1/localhost
/// it signed, and a second CA that signed nothing here.
pub struct TestPki {
    /// The test CA's certificate.
    pub ca: PathBuf,
    /// Another CA's certificate (trusting it must fail).
    pub other_ca: PathBuf,
    /// The server certificate (127.0.0.1, localhost), signed by `ca`.
    pub cert: PathBuf,
    /// The server certificate's key.
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running openssl (Debian: apt-get install openssl)")?;
    ensure!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl TestPki {
    /// Makes the files in a fresh temp directory (kept while this lives).
    pub fn make() -> Result<TestPki> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        for (name, subject) in [
            ("ca", "/CN=signalbox Kafka test CA"),
            ("other-ca", "/CN=another CA"),
        ] {
            let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
            openssl(
                d,
                &[
                    &["req", "-x509", "-nodes", "-days", "2"][..],
                    &ec,
                    &["-keyout", &key, "-out", &pem, "-subj", subject],
                ]
                .concat(),
            )?;
        }
        openssl(
            d,
            &[
                &["req", "-nodes"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        )?;
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        )?;
        Ok(TestPki {
            ca: d.join("ca.pem"),
            other_ca: d.join("other-ca.pem"),
            cert: d.join("server.pem"),
            key: d.join("server.key"),
            _dir: dir,
        })
    }
}
