//! Test certificates made with the `openssl` command at test time: a CA, a
//! server certificate for 127.0.0.1 and localhost and a client certificate
//! that it signed, and a second CA that signed nothing (for "trusts the wrong CA" cases). Used by the HTTPS
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
    /// A client certificate (for mutual TLS), signed by `ca`.
    pub client_cert: PathBuf,
    /// The client certificate's key.
    pub client_key: PathBuf,
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

/// Makes `<name>.key` and `<name>.pem`, a leaf certificate for `subject`
/// with the extensions `ext` (plus `CA:FALSE`, `digitalSignature`), signed by
/// `ca.pem` in `d`.
fn issue(d: &Path, name: &str, subject: &str, ext: &str) -> Result<()> {
    let (key, csr, pem, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        d,
        &[
            &["req", "-nodes"][..],
            &ec,
            &["-keyout", &key, "-out", &csr, "-subj", subject],
        ]
        .concat(),
    )?;
    std::fs::write(
        d.join(&extfile),
        format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n{ext}\n"),
    )?;
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &extfile,
            "-out",
            &pem,
        ],
    )
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
        issue(
            d,
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
        )?;
        issue(
            d,
            "client",
            "/CN=signalbox test client",
            "extendedKeyUsage=clientAuth",
        )?;
        Ok(TestPki {
            ca: d.join("ca.pem"),
            other_ca: d.join("other-ca.pem"),
            cert: d.join("server.pem"),
            key: d.join("server.key"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client.key"),
            _dir: dir,
        })
    }
}
