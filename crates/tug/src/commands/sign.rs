//! `tug keygen`, `tug sign`, `tug verify`: key-based image signatures in
//! cosign's format (cosign verifies what tug signs, and the reverse).

use crate::exit::{fail, INVALID_INPUT};
use crate::output::OutputFormat;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tug_image::registry::sign;
use tug_image::registry::{ClientOptions, Reference, RegistryClient};

#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// Write PREFIX.key and PREFIX.pub
    #[arg(long, default_value = "tug", value_name = "PREFIX")]
    pub output_key_prefix: String,
    /// Replace existing key files
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// The image in its registry (127.0.0.1:5000/app:1 or …@sha256:…)
    pub image: String,
    /// The private key (from `tug keygen` or `cosign generate-key-pair`);
    /// its password comes from TUG_KEY_PASSWORD, else a prompt
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    pub insecure: bool,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The image in its registry
    pub image: String,
    /// The public key (PEM) the signature must verify with
    #[arg(long, value_name = "PUB", required_unless_present = "provenance")]
    pub key: Option<PathBuf>,
    /// Also check the image's SLSA provenance attestation: its subject is
    /// this image and, with --key, its DSSE signature verifies with the key
    #[arg(long)]
    pub provenance: bool,
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    pub insecure: bool,
}

/// The key password: TUG_KEY_PASSWORD, else asked without echo on a terminal.
fn password(confirm: bool) -> Result<String> {
    if let Ok(p) = std::env::var("TUG_KEY_PASSWORD") {
        return Ok(p);
    }
    let term = console::Term::stderr();
    if !term.is_term() {
        return Err(fail(
            INVALID_INPUT,
            "no password: set TUG_KEY_PASSWORD (or run on a terminal to be asked)",
        ));
    }
    eprint!("password for the private key: ");
    let p = term.read_secure_line()?;
    if confirm {
        eprint!("again: ");
        if term.read_secure_line()? != p {
            return Err(fail(INVALID_INPUT, "the passwords differ"));
        }
    }
    Ok(p)
}

fn client(image: &str, insecure: bool) -> Result<(Reference, RegistryClient)> {
    let r = Reference::parse(image).map_err(|e| {
        fail(
            INVALID_INPUT,
            format!("{e}; give the image in its registry, e.g. 127.0.0.1:5000/app:1"),
        )
    })?;
    let c = RegistryClient::new(
        &r,
        ClientOptions {
            insecure,
            ..Default::default()
        },
    )?;
    Ok((r, c))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| fail(INVALID_INPUT, format!("{}: {e}", path.display())))
}

pub fn keygen(args: KeygenArgs) -> Result<ExitCode> {
    let key = PathBuf::from(format!("{}.key", args.output_key_prefix));
    let public = PathBuf::from(format!("{}.pub", args.output_key_prefix));
    for f in [&key, &public] {
        if f.exists() && !args.force {
            return Err(fail(
                INVALID_INPUT,
                format!("{} exists; pass --force to replace it", f.display()),
            ));
        }
    }
    let pw = password(true)?;
    let (private_pem, public_pem) = sign::generate(pw.as_bytes())?;
    write_private(&key, &private_pem)?;
    std::fs::write(&public, public_pem).with_context(|| format!("writing {}", public.display()))?;
    eprintln!(
        "wrote {} (private, encrypted) and {} (public)",
        key.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the private key readable by its owner only.
fn write_private(path: &Path, pem: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads and decrypts a private key (password from TUG_KEY_PASSWORD, else asked).
pub fn private_key(path: &Path) -> Result<sign::SigningKey> {
    let pem = read(path)?;
    sign::decrypt_private(&pem, password(false)?.as_bytes())
        .map_err(|e| fail(INVALID_INPUT, format!("{}: {e}", path.display())))
}

pub fn sign_image(output: OutputFormat, args: SignArgs) -> Result<ExitCode> {
    let key = private_key(&args.key)?;
    let (r, c) = client(&args.image, args.insecure)?;
    let signed = c
        .sign(&r, &key)
        .with_context(|| format!("signing {}", args.image))?;
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&signed)?),
        OutputFormat::Table => println!(
            "signed {}@{} ({} signature(s) in :{})",
            r.registry.clone() + "/" + &r.repository,
            signed.digest,
            signed.signatures,
            signed.signature_tag
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(output: OutputFormat, args: VerifyArgs) -> Result<ExitCode> {
    let key = match &args.key {
        Some(path) => Some(
            sign::public_key(&read(path)?)
                .map_err(|e| fail(INVALID_INPUT, format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let (r, c) = client(&args.image, args.insecure)?;
    let mut doc = serde_json::json!({"image": args.image, "verified": true});
    let mut lines = Vec::new();
    if let Some(key) = &key {
        match c.verify(&r, key) {
            Ok(digest) => {
                lines.push(format!("verified {} ({digest})", args.image));
                doc["digest"] = digest.into();
            }
            Err(e @ (sign::SignError::Unsigned { .. } | sign::SignError::Invalid { .. })) => {
                return Err(fail(1, format!("verification failed: {e}")))
            }
            Err(e) => return Err(e).with_context(|| format!("verifying {}", args.image)),
        }
    }
    if args.provenance {
        use tug_image::registry::attest::AttestError;
        match c.verify_provenance(&r, key.as_ref()) {
            Ok(p) => {
                let def = &p.statement["predicate"]["buildDefinition"];
                let deps = &def["resolvedDependencies"];
                lines.push(format!(
                    "provenance {} ({}): built by {} from source sha256:{}, Cargo.lock sha256:{}, {}",
                    if p.signature_checked {
                        "verified"
                    } else {
                        "found (no --key: signature unchecked)"
                    },
                    p.attestation,
                    p.statement["predicate"]["runDetails"]["builder"]["id"]
                        .as_str()
                        .unwrap_or("?"),
                    deps[0]["digest"]["sha256"].as_str().unwrap_or("?"),
                    deps[1]["digest"]["sha256"].as_str().unwrap_or("?"),
                    def["internalParameters"]["toolchain"].as_str().unwrap_or("?"),
                ));
                doc["digest"] = p.digest.clone().into();
                doc["provenance"] = serde_json::to_value(&p)?;
            }
            Err(e @ (AttestError::Missing { .. } | AttestError::Invalid { .. })) => {
                return Err(fail(1, format!("provenance check failed: {e}")))
            }
            Err(e) => {
                return Err(e).with_context(|| format!("checking the provenance of {}", args.image))
            }
        }
    }
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
        OutputFormat::Table => {
            for l in lines {
                println!("{l}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
