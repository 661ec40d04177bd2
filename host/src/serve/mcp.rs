//! The MCP server: every loaded tool is an MCP tool, called for the user the
//! session or request acts for.
//!
//! Results map as follows:
//!
//! - the tool's output is `structuredContent` (when it is a JSON object) and
//!   a text block holding the same JSON;
//! - the tool's own error value (`err` of a WIT `result`) is a tool result
//!   with `isError: true`, and so are arguments that do not fit the input
//!   schema, so that the model can correct them;
//! - an unknown tool, a broken limit, a trap or cancellation is a protocol
//!   error;
//! - a call that needs the user to link an account becomes a consent prompt
//!   (see `consent.rs`).
//!
//! A client that sends a progress token gets a progress notification every
//! `progress_interval_ms` while the call runs; cancelling the request stops
//! the guest.

use super::consent;
use super::{Acting, CallFailure, Server};
use crate::runtime::{CallError, CallOutput, CallRequest, ToolInfo};
use crate::tools::ToolOutput;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    Implementation, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ServerHandler, ServiceExt as _};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Serves MCP for one [`Server`]. Over stdio it acts for a fixed user; over
/// HTTP it acts for the user the request was authenticated for.
#[derive(Clone)]
pub struct McpHandler {
    server: Arc<Server>,
    fixed: Option<Acting>,
}

impl McpHandler {
    /// A handler that takes the user from each HTTP request.
    pub fn for_http(server: Arc<Server>) -> McpHandler {
        McpHandler {
            server,
            fixed: None,
        }
    }

    /// A handler that always acts as `acting` (stdio).
    pub fn for_session(server: Arc<Server>, acting: Acting) -> McpHandler {
        McpHandler {
            server,
            fixed: Some(acting),
        }
    }

    /// The server behind this handler.
    pub(super) fn server(&self) -> &Arc<Server> {
        &self.server
    }

    /// Who this request acts for: the session's user, or the one the HTTP
    /// layer authenticated and put in the request's extensions.
    fn acting(&self, context: &RequestContext<RoleServer>) -> Result<Acting, ErrorData> {
        if let Some(acting) = &self.fixed {
            return Ok(acting.clone());
        }
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Acting>())
            .cloned()
            // The HTTP layer refuses unauthenticated requests before they
            // get here; reaching this is a wiring fault, not a caller's.
            .ok_or_else(|| ErrorData::internal_error("request has no authenticated user", None))
    }

    /// Runs one call with progress notifications, and maps host failures to
    /// protocol errors. Consent is left to the caller.
    pub(super) async fn run(
        &self,
        request: CallRequest,
        guard: &super::CallGuard,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallOutput, CallFailure> {
        let work = self.server.call(request, guard, &context.ct);
        let Some(token) = context.meta.get_progress_token() else {
            return work.await;
        };

        let interval = Duration::from_millis(self.server.settings().progress_interval_ms);
        let started = Instant::now();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tokio::pin!(work);
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = ticker.tick() => {
                    let elapsed = started.elapsed().as_secs_f64();
                    let mut note = ProgressNotificationParam::new(token.clone(), elapsed);
                    note.message = Some(format!("running for {elapsed:.1} s"));
                    // A client that stopped listening does not stop the call.
                    let _ = context.peer.notify_progress(note).await;
                }
            }
        }
    }
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("airlock", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "Tools run in a sandbox and call APIs as the user; when a tool needs the user \
             to link an account, the user is sent a consent link."
                .into(),
        );
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self.server.host().tools().iter().map(mcp_tool).collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        params: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let acting = self.acting(&context)?;
        let guard = self.server.begin_call().map_err(protocol_error)?;
        let request = CallRequest {
            tool: params.name.to_string(),
            user: acting.user.clone(),
            caller: acting.caller.clone(),
            args: serde_json::Value::Object(params.arguments.clone().unwrap_or_default()),
        };
        let span = tracing::info_span!(
            "airlock.serve.call",
            tool = %request.tool,
            user = %acting.user,
            caller = %acting.caller
        );
        async {
            match self.run(request.clone(), &guard, &context).await {
                Err(CallFailure::Host(CallError::AuthorizationRequired(required))) => {
                    consent::ask(self, &params, &context, &guard, request, required).await
                }
                result => to_response(result),
            }
        }
        .instrument(span)
        .await
    }
}

/// Runs one MCP session on standard input and output as `acting`, until the
/// client closes it or `shutdown` fires; then lets calls in flight finish
/// within the grace and flushes the audit log.
pub async fn serve_stdio(
    server: Arc<Server>,
    acting: Acting,
    shutdown: CancellationToken,
) -> Result<(), super::ServeError> {
    let handler = McpHandler::for_session(server.clone(), acting);
    let session_ct = CancellationToken::new();
    let running = handler
        .serve_with_ct(rmcp::transport::stdio_pipes(), session_ct.clone())
        .await;
    let service = match running {
        Ok(service) => service,
        // A client that goes away before the handshake is not a failure of
        // the server.
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => {
            server.shutdown().await;
            return Ok(());
        }
        Err(e) => return Err(super::ServeError::Session(e.to_string())),
    };

    // The session must stay up while calls drain, so its future is kept
    // (dropping it would close the session at once).
    let waiting = service.waiting();
    tokio::pin!(waiting);
    let result = tokio::select! {
        quit = &mut waiting => quit
            .map(|_| ())
            .map_err(|e| super::ServeError::Session(e.to_string())),
        () = shutdown.cancelled() => {
            server.shutdown().await;
            session_ct.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), waiting).await;
            return Ok(());
        }
    };
    server.shutdown().await;
    result
}

/// The MCP form of a loaded tool.
fn mcp_tool(info: &ToolInfo) -> Tool {
    let object = |schema: &serde_json::Value| match schema {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let mut tool = Tool::new(
        info.name.clone(),
        info.description.clone(),
        Arc::new(object(&info.input_schema)),
    );
    if info.description.is_empty() {
        tool.description = None;
    }
    if let Some(output) = &info.output_schema {
        tool = tool.with_raw_output_schema(Arc::new(object(output)));
    }
    tool
}

/// The MCP answer to a finished call.
pub(super) fn to_response(
    result: Result<CallOutput, CallFailure>,
) -> Result<CallToolResponse, ErrorData> {
    match result {
        Ok(out) => Ok(tool_result(out.output).into()),
        Err(CallFailure::Host(CallError::InvalidArguments { tool, source })) => {
            let text = format!("tool {tool:?}: {source}");
            Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into())
        }
        Err(err) => Err(protocol_error(err)),
    }
}

fn tool_result(output: ToolOutput) -> CallToolResult {
    match output {
        ToolOutput::Ok(value) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
            if value.is_object() {
                result.structured_content = Some(value);
            }
            result
        }
        ToolOutput::ToolError(value) => {
            let text = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            CallToolResult::error(vec![ContentBlock::text(text)])
        }
    }
}

/// A host failure as an MCP protocol error. Messages are the host's own
/// (they name the tool and the broken limit); none carries a secret.
pub(super) fn protocol_error(err: CallFailure) -> ErrorData {
    match err {
        CallFailure::Host(CallError::UnknownTool(name)) => {
            ErrorData::invalid_params(format!("unknown tool: {name:?}"), None)
        }
        CallFailure::Host(err @ CallError::InvalidUser(_)) => {
            ErrorData::invalid_params(err.to_string(), None)
        }
        other => ErrorData::internal_error(other.to_string(), None),
    }
}
