//! The `souk` command. Thin on purpose: parse flags, load the config, call the library,
//! turn failures into a message and an exit code a shell user can act on.

use clap::{Args, Parser, Subcommand};
use souk::config::{Config, ConfigError};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "souk",
    version,
    about = "A multi-vendor marketplace in one binary"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// Config file (default: ./config.toml if present, else <data>/config.toml if present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` in the config).
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the marketplace over HTTPS.
    Serve {
        /// Address to listen on (overrides `http.listen`), e.g. 127.0.0.1:8443 or 0.0.0.0:0.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Fill the data dir with a demo marketplace (or reuse the demo already there), print
    /// the logins, and serve it.
    Demo {
        /// Address to listen on (overrides `http.listen`).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// How many products to generate (default: `catalog.demo_products`).
        #[arg(long)]
        products: Option<usize>,
        /// The same seed always makes the same marketplace (default: `catalog.demo_seed`).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Create the data directory, its keys and a config file if there is none.
    Init,
    /// Rebuild the search index from the state store (stop the server first; a running
    /// server rebuilds through `POST /api/v1/admin/search/reindex`).
    Reindex,
    /// Open every store read-only and verify what can be verified.
    Check,
    /// Read the event log.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Manage administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator. The password is read from standard input (prompted
    /// without echo on a terminal). Refused while a server holds the data dir.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new access-token signing key (tokens signed by older keys stay valid until
    /// they expire) and a new field-encryption key (older records stay readable). A running
    /// server uses the new keys after a restart.
    Rotate,
}

#[derive(Subcommand)]
enum LogCommand {
    /// Print a topic's events as JSON lines, oldest first.
    Tail {
        #[arg(long)]
        topic: String,
        /// First offset to print in each partition (default: the oldest kept).
        #[arg(long)]
        from: Option<u64>,
        /// Only this partition.
        #[arg(long)]
        partition: Option<u16>,
    },
}

/// Exit codes, documented in the README.
mod exit {
    pub const FAILURE: u8 = 1;
    pub const CONFIG: u8 = 3;
    pub const STORE: u8 = 4;
    pub const CHECK_FAILED: u8 = 5;
}

/// mimalloc instead of the platform allocator (see the README's dependency notes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = match load_config(&cli.global, &cli.command) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("souk: invalid configuration: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let log_guard = init_tracing(&config);
    let result = match cli.command {
        Command::Serve { .. } => serve(config),
        Command::Demo { products, seed, .. } => {
            let products = products.unwrap_or(config.catalog.demo_products);
            let seed = seed.unwrap_or(config.catalog.demo_seed);
            demo(config, products, seed)
        }
        Command::Init => init(&config),
        Command::Reindex => souk::services::search::reindex(&config).map(|r| {
            println!(
                "search index rebuilt: {} documents, {} bytes, {:.1} s",
                r.documents, r.bytes, r.seconds
            );
            ExitCode::SUCCESS
        }),
        Command::Check => check(&config),
        Command::Log {
            command:
                LogCommand::Tail {
                    topic,
                    from,
                    partition,
                },
        } => log_tail(&config, &topic, from, partition),
        Command::Admin {
            command: AdminCommand::Create { email, name },
        } => admin_create(config, &email, name.as_deref()),
        Command::Keys {
            command: KeysCommand::Rotate,
        } => rotate_keys(&config),
    };
    drop(log_guard);
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("souk: {e}");
            let code = match e {
                souk::Error::Storage(_) => exit::STORE,
                _ => exit::FAILURE,
            };
            ExitCode::from(code)
        }
    }
}

fn load_config(global: &Global, command: &Command) -> Result<Config, ConfigError> {
    let data_default = global.data.clone().unwrap_or_else(|| PathBuf::from("data"));
    let path = global.config.clone().or_else(|| {
        [
            PathBuf::from("config.toml"),
            data_default.join("config.toml"),
        ]
        .into_iter()
        .find(|p| p.is_file())
    });
    let mut config = Config::load(path.as_deref(), std::env::vars())?;
    if let Some(d) = &global.data {
        config.data_dir = d.clone();
    }
    if let Command::Serve {
        listen: Some(addr), ..
    }
    | Command::Demo {
        listen: Some(addr), ..
    } = command
    {
        config.http.listen = *addr;
    }
    config.validate()?;
    Ok(config)
}

/// Log lines go to stderr through a buffer (see `souk::logging`); keep the guard until exit.
fn init_tracing(config: &Config) -> souk::logging::Guard {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.telemetry.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (sink, guard) = souk::logging::buffered(Box::new(std::io::stderr()));
    let json = config.telemetry.format == "json";
    souk::logging::access::install(&sink, json);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink)
        .event_format(souk::logging::LineFormat { json })
        .init();
    guard
}

fn runtime() -> souk::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(souk::Error::internal)
}

fn serve(config: Config) -> souk::Result<ExitCode> {
    runtime()?.block_on(souk::app::serve(config))?;
    Ok(ExitCode::SUCCESS)
}

fn demo(config: Config, products: usize, seed: u64) -> souk::Result<ExitCode> {
    let report = souk::services::catalog::demo::generate(&config, products, seed)?;
    println!("{report}");
    serve(config)
}

fn init(config: &Config) -> souk::Result<ExitCode> {
    let report = souk::app::init(config)?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn check(config: &Config) -> souk::Result<ExitCode> {
    let report = souk::check::run(config)?;
    print!("{report}");
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::CHECK_FAILED)
    })
}

fn log_tail(
    config: &Config,
    topic: &str,
    from: Option<u64>,
    partition: Option<u16>,
) -> souk::Result<ExitCode> {
    let dir = config.data_dir.join("log");
    if !dir.is_dir() {
        return Err(souk::Error::Storage(format!(
            "{} does not exist: is --data right? (`souk init` creates a data dir)",
            dir.display()
        )));
    }
    let log = souk::log::EventLog::open(&dir, &config.log, souk::clock::Clock::default())?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let summary = souk::log::tail::tail(&log, topic, from, partition, &mut out)?;
    for note in &summary.notes {
        eprintln!("souk: {note}");
    }
    Ok(ExitCode::SUCCESS)
}

fn rotate_keys(config: &Config) -> souk::Result<ExitCode> {
    let kid = souk::auth::keys::rotate_keys(config)?;
    println!("new access-token signing key {kid}");
    let kid = souk::services::payments::rotate_field_key(config)?;
    println!("new field-encryption key {kid}");
    Ok(ExitCode::SUCCESS)
}

fn admin_create(config: Config, email: &str, name: Option<&str>) -> souk::Result<ExitCode> {
    let password = read_password()?;
    let app = souk::App::open(config)?;
    let result =
        souk::services::users::admin::create_admin_blocking(&app.state, email, &password, name);
    app.state.store.close();
    let id = result?;
    println!("admin {id} created for {email}");
    Ok(ExitCode::SUCCESS)
}

/// One line from stdin; on a terminal, prompted with echo off (via `stty`, so no
/// terminal crate is needed).
fn read_password() -> souk::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let stty = |arg: &str| {
        let _ = std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    if tty {
        eprint!("password: ");
        let _ = std::io::stderr().flush();
        stty("-echo");
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if tty {
        stty("echo");
        eprintln!();
    }
    read.map_err(souk::Error::internal)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(souk::Error::BadRequest(
            "no password given on standard input".into(),
        ));
    }
    Ok(password)
}
