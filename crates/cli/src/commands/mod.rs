//! One module per verb; [`run`] dispatches. Each returns the process exit code.

mod client;
mod dev;
mod dev_group;
mod manage;
mod pattern;
mod plugin_admin;
mod plugin_new;
mod plugin_test;
mod publish;
mod serve;
mod sub_check;
mod wait;

use std::process::ExitCode;

use crate::cli::{
    ClusterCommand, Command, FiringCommand, LineageCommand, PatternCommand, PluginCommand,
    SignalsCommand, SubCommand,
};

/// The span export the service verbs ask for (`serve`: the config file's
/// `[telemetry]` table or `--otlp-endpoint`; `dev`: `--otlp-endpoint`), needed
/// before the subscriber is installed; `None` for every other verb.
pub fn telemetry_config(
    command: &Command,
) -> anyhow::Result<Option<signalbox_router::TelemetryConfig>> {
    Ok(match command {
        Command::Serve(args) => serve::config(args)?.telemetry,
        Command::Dev(args) => match &args.otlp_endpoint {
            Some(endpoint) => {
                let t = signalbox_router::TelemetryConfig::new(endpoint.clone());
                t.validate()
                    .map_err(|(field, rule)| anyhow::anyhow!("{field}: {rule}"))?;
                Some(t)
            }
            None => None,
        },
        _ => None,
    })
}

/// Runs one verb.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve::run(args).await,
        Command::Dev(args) => dev::run(args).await,
        // `main` runs the worker before any runtime starts (it makes its own).
        Command::KafkaWorker { .. } => anyhow::bail!("kafka-worker runs only from main"),
        Command::Publish(args) => publish::run(args).await,
        Command::Sub(SubCommand::Add { files, client }) => manage::sub_add(&client, &files).await,
        Command::Sub(SubCommand::Check { files }) => sub_check::run(&files),
        Command::Sub(SubCommand::Ls { client }) => manage::request(&client, "sub.ls", "").await,
        Command::Sub(SubCommand::Show { id, client }) => {
            manage::request(&client, "sub.show", &id).await
        }
        Command::Sub(SubCommand::Rm { id, client }) => {
            manage::request(&client, "sub.rm", &id).await
        }
        Command::Signals(SignalsCommand::Ls {
            name,
            after,
            limit,
            client,
        }) => {
            let body = serde_json::json!({"name": name, "after": after, "limit": limit});
            manage::request(&client, "signals.ls", &body.to_string()).await
        }
        Command::Signals(SignalsCommand::Show { signal, client }) => {
            manage::request(&client, "signals.show", &signal).await
        }
        Command::Firing(FiringCommand::Show { id, client }) => {
            manage::request(&client, "firing.show", &id).await
        }
        Command::Explain(args) => {
            let body = serde_json::json!({"sub": args.sub, "signal": args.signal});
            manage::request(&args.client, "explain", &body.to_string()).await
        }
        Command::Wait(args) => wait::run(args).await,
        Command::Cluster(ClusterCommand::Status { client }) => {
            manage::request(&client, "cluster.status", "").await
        }
        Command::Replay {
            sub,
            since,
            until,
            page,
            client,
        } => manage::replay(&client, &sub, since, until, page).await,
        Command::Lineage(LineageCommand::Signal { signal, client }) => {
            manage::request(&client, "lineage.signal", &signal).await
        }
        Command::Lineage(LineageCommand::Sub { id, client }) => {
            manage::request(&client, "lineage.sub", &id).await
        }
        Command::Lineage(LineageCommand::Firing { id, client }) => {
            manage::request(&client, "lineage.firing", &id).await
        }
        Command::Lineage(LineageCommand::Wait { id, client }) => {
            manage::request(&client, "lineage.wait", &id).await
        }
        Command::Lineage(LineageCommand::Export {
            format,
            since,
            until,
            signal,
            sub,
            firing,
            limit,
            client,
        }) => {
            let body = serde_json::json!({
                "format": format, "since": since, "until": until, "signal": signal,
                "sub": sub, "firing": firing, "limit": limit,
            });
            manage::export(&client, &body.to_string()).await
        }
        Command::Pattern(PatternCommand::Test { pattern, signal }) => {
            pattern::test(&pattern, &signal)
        }
        Command::Pattern(PatternCommand::Check { pattern }) => pattern::check(&pattern),
        Command::Plugin(PluginCommand::New {
            name,
            lang,
            world,
            dir,
        }) => plugin_new::new(&name, lang, world, &dir),
        Command::Plugin(PluginCommand::Test {
            file,
            arg,
            input,
            headers,
            settings,
            deadline,
        }) => plugin_test::test(&file, arg.as_deref(), &input, &headers, &settings, deadline),
        Command::Plugin(PluginCommand::Deploy {
            file,
            name,
            settings,
            client,
        }) => plugin_admin::deploy(&client, &file, name.as_deref(), &settings).await,
        Command::Plugin(PluginCommand::Ls { client }) => {
            manage::request(&client, "plugin.ls", "").await
        }
        Command::Plugin(PluginCommand::Inspect { name, client }) => {
            manage::request(&client, "plugin.inspect", &name).await
        }
        Command::Plugin(PluginCommand::Rollback { name, client }) => {
            manage::request(&client, "plugin.rollback", &name).await
        }
        Command::Plugin(PluginCommand::Rm { name, client }) => {
            manage::request(&client, "plugin.rm", &name).await
        }
    }
}
