//! `popcrypt check` and `popcrypt keys`: what an operator runs before the
//! first user calls. Both work per account ([`Account`]); today a
//! configuration has one implicit account, so [`accounts`] returns one.
//!
//! Output goes to standard output, one finding per line with what to do on
//! the next; nothing secret is printed (key material, passphrases).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{CheckArgs, KeysArgs};
use crate::config::{Config, UpstreamTls};
use crate::keys::inventory::{self, Inventory, Item};
use crate::keys::{Keyring, PassphraseSource};

/// One account's key and upstream settings, as `check` and `keys` see
/// them.
pub(crate) struct Account<'a> {
    pub name: &'a str,
    pub keys: Option<&'a Path>,
    pub pass: &'a PassphraseSource,
    pub smime_system_roots: bool,
    /// The configuration the account's sessions run with (upstream, TLS,
    /// timeouts).
    pub config: &'a Config,
}

/// The accounts of a configuration: today the one implicit account.
pub(crate) fn accounts(config: &Config) -> Vec<Account<'_>> {
    vec![Account {
        name: "default",
        keys: config.keys.as_deref(),
        pass: &config.keys_passphrase,
        smime_system_roots: config.smime_system_roots,
        config,
    }]
}

/// Lines and the number of problems found so far.
#[derive(Default)]
struct Report {
    problems: usize,
}

impl Report {
    fn ok(&self, indent: usize, what: &str) {
        println!("{:indent$}ok       {what}", "");
    }
    fn note(&self, indent: usize, what: &str) {
        println!("{:indent$}note     {what}", "");
    }
    fn warn(&self, indent: usize, what: &str, fix: &str) {
        println!("{:indent$}warning  {what}", "");
        println!("{:indent$}         fix: {fix}", "");
    }
    fn problem(&mut self, indent: usize, what: &str, fix: &str) {
        self.problems += 1;
        println!("{:indent$}PROBLEM  {what}", "");
        println!("{:indent$}         fix: {fix}", "");
    }
}

/// `popcrypt check`: exit 0 when everything is usable, 1 when something is
/// not, 2 when the configuration itself is invalid.
pub async fn check(args: &CheckArgs) -> ExitCode {
    let config = match super::serve_config(&args.settings) {
        Ok(c) => c,
        Err(e) => {
            println!("PROBLEM  configuration: {e}");
            println!("         fix: correct the configuration (see README, \"Configuration\"), then run popcrypt check again");
            return ExitCode::from(2);
        }
    };
    let mut report = Report::default();
    let source = args
        .settings
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "command-line flags".into());
    report.ok(0, &format!("configuration {source}: valid"));
    for w in config.warnings() {
        report.warn(0, w, "see [timeouts] in the README");
    }
    for account in accounts(&config) {
        println!("account {}", account.name);
        check_keys(&account, &mut report);
        check_upstream(&account, &mut report).await;
    }
    if report.problems == 0 {
        println!("result: everything usable");
        ExitCode::SUCCESS
    } else {
        println!(
            "result: {} problem(s); fix them and run popcrypt check again",
            report.problems
        );
        ExitCode::FAILURE
    }
}

/// The keys of one account: what `serve` would load, then every problem of
/// every file, then file permissions.
fn check_keys(account: &Account<'_>, report: &mut Report) {
    let Some(dir) = account.keys else {
        report.note(2, "keys: none configured (popcrypt relays and annotates only); set `keys` to a directory with openpgp/, smime/, trust/");
        return;
    };
    println!("  keys {}", dir.display());
    let inv = inventory::inspect(dir, account.pass);
    for item in &inv.items {
        if item.usable {
            report.ok(4, &item_line(dir, item));
        } else {
            println!("    unusable {}", item_line(dir, item));
        }
    }
    for f in &inv.findings {
        let what = format!("{}: {}", inventory::short_path(dir, &f.source), f.problem);
        report.problem(4, &what, &f.fix);
    }
    // What `serve` does: stops at the first error. Reported only when the
    // inventory did not already explain it.
    if let Err(e) = Keyring::load_with(dir, account.pass, account.smime_system_roots) {
        if inv.findings.is_empty() {
            report.problem(
                4,
                &format!("serve cannot load the keys: {e}"),
                "fix the file it names",
            );
        }
    }
    if inv.items.is_empty() && inv.findings.is_empty() {
        report.note(
            4,
            "no keys or certificates found: popcrypt relays and annotates only",
        );
    }
    for p in crate::keys::permission_findings(Some(dir), account.pass.file.as_deref()) {
        report.warn(
            4,
            &p.to_string(),
            &format!("chmod 600 {}", p.path.display()),
        );
    }
}

/// One line per item for `check`.
fn item_line(dir: &Path, item: &Item) -> String {
    let who = if item.emails.is_empty() {
        item.name.clone()
    } else {
        item.emails.join(", ")
    };
    format!(
        "{}: {} {} ({}; {}; expires {})",
        inventory::short_path(dir, &item.source),
        item.kind,
        item.id,
        who,
        item.capabilities.join(", "),
        item.expires
    )
}

/// The upstream of one account: a real connection, as `serve` makes it.
async fn check_upstream(account: &Account<'_>, report: &mut Report) {
    let cfg = account.config;
    let tls = match cfg.upstream_tls {
        UpstreamTls::Implicit => "implicit TLS",
        UpstreamTls::Starttls => "STLS",
        UpstreamTls::None => "no TLS",
    };
    println!(
        "  upstream {}:{} ({tls}, server name {})",
        cfg.upstream_host, cfg.upstream_port, cfg.upstream_server_name
    );
    let probe = super::probe::probe(cfg).await;
    for (i, c) in probe.chain.iter().enumerate() {
        println!("    certificate {i}: subject {}", c.subject);
        println!("                   issuer  {}", c.issuer);
        println!(
            "                   valid   {} to {}",
            c.not_before, c.not_after
        );
    }
    match probe.outcome {
        Ok(_) if cfg.upstream_tls == UpstreamTls::None => report.warn(
            4,
            "connected WITHOUT TLS, greeting received",
            "use upstream_tls = \"implicit\" or \"starttls\" outside of tests",
        ),
        Ok(_) => report.ok(
            4,
            "TLS handshake: the certificate verifies; POP3 greeting received",
        ),
        Err((what, fix)) => report.problem(4, &format!("upstream: {what}"), &fix),
    }
}

/// `popcrypt keys`: the inventory of each account, or of one directory.
pub fn keys(args: &KeysArgs) -> ExitCode {
    let pass = args.passphrase.source();
    let config;
    let listed: Vec<(String, PathBuf, PassphraseSource)> = if let Some(path) = &args.config {
        config = match Config::load(Some(path), |mut f| {
            f.keys_passphrase_file = pass.file.clone().or(f.keys_passphrase_file);
            f.keys_passphrase_env = pass.env.clone().or(f.keys_passphrase_env);
            f
        }) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("popcrypt: {e}");
                return ExitCode::from(2);
            }
        };
        accounts(&config)
            .into_iter()
            .filter_map(|a| {
                a.keys
                    .map(|k| (a.name.to_string(), k.to_owned(), a.pass.clone()))
            })
            .collect()
    } else if let Some(dir) = &args.keys {
        vec![("default".into(), dir.clone(), pass)]
    } else {
        eprintln!("popcrypt: give --keys DIR or --config FILE (see popcrypt keys --help)");
        return ExitCode::from(2);
    };
    if listed.is_empty() {
        println!("no keys directory configured");
    }
    let mut problems = 0;
    for (name, dir, pass) in listed {
        println!("account {name}: keys {}", dir.display());
        let inv = inventory::inspect(&dir, &pass);
        print_inventory(&dir, &inv);
        problems += inv.findings.len();
    }
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        println!("{problems} problem(s): run popcrypt check for what to do");
        ExitCode::FAILURE
    }
}

fn print_inventory(dir: &Path, inv: &Inventory) {
    for item in &inv.items {
        println!();
        println!("  {}", item.kind);
        println!(
            "    source:       {}",
            inventory::short_path(dir, &item.source)
        );
        let id_label = if item.id.starts_with("issuer ") {
            "id:          "
        } else {
            "fingerprint: "
        };
        println!("    {id_label} {}", item.id);
        if !item.name.is_empty() {
            println!("    name:         {}", item.name);
        }
        println!("    emails:       {}", none_if_empty(&item.emails));
        println!("    algorithms:   {}", none_if_empty(&item.algorithms));
        println!("    capabilities: {}", none_if_empty(&item.capabilities));
        println!("    expires:      {}", item.expires);
        if !item.usable {
            println!("    status:       UNUSABLE (see the problems below)");
        }
    }
    if inv.items.is_empty() {
        println!("  no keys or certificates");
    }
    for f in &inv.findings {
        println!(
            "  problem: {}: {}",
            inventory::short_path(dir, &f.source),
            f.problem
        );
    }
}

fn none_if_empty<S: AsRef<str>>(v: &[S]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ")
    }
}
