//! What sending needs besides the ledger, set up one way for `pressroom send` and the
//! daemon's mail run: the templates, a current-thread runtime for the SMTP connections
//! (they belong to the runtime they are made on), the transport and the DKIM signer (its
//! key read once per run).

use std::path::Path;

use anyhow::Context;

use super::dkim::Signer;
use super::transport::Transport;
use crate::config::Config;
use crate::render::Templates;

pub struct Session {
    pub templates: Templates,
    pub runtime: tokio::runtime::Runtime,
    pub transport: Transport,
    pub signer: Option<Signer>,
}

impl Session {
    pub fn open(config: &Config, credentials: Option<&Path>) -> anyhow::Result<Session> {
        let (templates, _) = Templates::load(&config.paths.templates);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let transport = {
            let _inside = runtime.enter();
            Transport::from_config(&config.mail, credentials)?
        };
        let signer = Signer::from_config(config)?;
        Ok(Session {
            templates,
            runtime,
            transport,
            signer,
        })
    }
}
