//! A connection's startup: TLS required or not, then trust or SCRAM
//! authentication (see [`super::auth`]), then the session is registered
//! for `pg_stat_activity`.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::auth::Users;
use super::Server;

/// One connection's startup handler (pgwire asks for one per connection:
/// SCRAM keeps its exchange's state in it).
pub struct Startup {
    server: Arc<Server>,
    /// `--auth password`: the SCRAM exchange.
    sasl: Option<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
    tls_required: bool,
}

impl Startup {
    pub fn new(server: Arc<Server>, users: Option<Arc<Users>>, tls_required: bool) -> Startup {
        let sasl = users.map(|users| {
            SASLAuthStartupHandler::new(Arc::new(DefaultServerParameterProvider::default()))
                .with_scram(ScramAuth::new(users))
                .with_connection_manager(Arc::clone(&server.manager))
                .with_pid_secret_key_generator(Arc::clone(&server.pids) as _)
        });
        Startup {
            server,
            sasl,
            tls_required,
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if matches!(message, PgWireFrontendMessage::Startup(_))
            && self.tls_required
            && !client.is_secure()
        {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "28000".into(),
                "the server requires TLS (--tls-required): connect with sslmode=require".into(),
            ))));
        }
        if let PgWireFrontendMessage::Startup(startup) = &message {
            let user = startup.parameters.get("user").cloned().unwrap_or_default();
            if self
                .server
                .access
                .users
                .role(&user)
                .is_some_and(|r| !r.login)
            {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "28000".into(),
                    format!("role \"{user}\" is not permitted to log in"),
                ))));
            }
        }
        let Some(sasl) = &self.sasl else {
            // Trust: any user, no password.
            return StartupHandler::on_startup(self.server.as_ref(), client, message).await;
        };
        let ready = |c: &C| matches!(c.state(), PgWireConnectionState::ReadyForQuery);
        let before = ready(client);
        match sasl.on_startup(client, message).await {
            Ok(()) => {}
            // PostgreSQL's own words, with the user's name.
            Err(PgWireError::InvalidPassword(_)) => {
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                tracing::warn!(%user, peer = %client.socket_addr(), "password authentication failed");
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "FATAL".into(),
                    "28P01".into(),
                    format!("password authentication failed for user \"{user}\""),
                ))));
            }
            Err(e) => return Err(e),
        }
        if !before && ready(client) {
            self.server.session_started(client);
        }
        Ok(())
    }
}
