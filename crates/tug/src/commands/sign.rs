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
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
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

pub fn sign_image(output: OutputFormat, args: SignArgs) -> Result<ExitCode> {
    let pem = read(&args.key)?;
    let key = sign::decrypt_private(&pem, password(false)?.as_bytes())
        .map_err(|e| fail(INVALID_INPUT, format!("{}: {e}", args.key.display())))?;
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
    let key = sign::public_key(&read(&args.key)?)
        .map_err(|e| fail(INVALID_INPUT, format!("{}: {e}", args.key.display())))?;
    let (r, c) = client(&args.image, args.insecure)?;
    match c.verify(&r, &key) {
        Ok(digest) => {
            match output {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::json!({"image": args.image, "digest": digest, "verified": true})
                ),
                OutputFormat::Table => println!("verified {} ({digest})", args.image),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (sign::SignError::Unsigned { .. } | sign::SignError::Invalid { .. })) => {
            Err(fail(1, format!("verification failed: {e}")))
        }
        Err(e) => Err(e).with_context(|| format!("verifying {}", args.image)),
    }
}
