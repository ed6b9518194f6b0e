//! OpenTelemetry semantic-convention keys gotap emits (stable HTTP conventions, v1.26+ names).

pub const SERVICE_NAME: &str = "service.name";
pub const PROCESS_PID: &str = "process.pid";
pub const PROCESS_EXECUTABLE_PATH: &str = "process.executable.path";
pub const PROCESS_RUNTIME_NAME: &str = "process.runtime.name";
pub const PROCESS_RUNTIME_VERSION: &str = "process.runtime.version";
pub const TELEMETRY_DISTRO_NAME: &str = "telemetry.distro.name";
pub const TELEMETRY_DISTRO_VERSION: &str = "telemetry.distro.version";
pub const HOST_NAME: &str = "host.name";

pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
pub const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
pub const HTTP_ROUTE: &str = "http.route";
pub const URL_PATH: &str = "url.path";
pub const URL_QUERY: &str = "url.query";
pub const URL_SCHEME: &str = "url.scheme";
pub const URL_FULL: &str = "url.full";
pub const SERVER_ADDRESS: &str = "server.address";
pub const SERVER_PORT: &str = "server.port";
pub const CLIENT_ADDRESS: &str = "client.address";
pub const CLIENT_PORT: &str = "client.port";
pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";
pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
pub const NETWORK_PEER_ADDRESS: &str = "network.peer.address";
pub const NETWORK_PEER_PORT: &str = "network.peer.port";
pub const ERROR_TYPE: &str = "error.type";
