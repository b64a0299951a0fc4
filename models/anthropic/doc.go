// Package anthropic is an infinity.ModelProvider for the Anthropic Messages
// API, streaming over server-sent events.
//
// # Configuration
//
// New takes a Config: the API key (required; FromEnv reads
// ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL), the base URL (DefaultBaseURL,
// https://api.anthropic.com/, when empty), the models served (at least
// one, with context window and output limit; the first is the default of
// a request with no model), an optional *http.Client (else one keeping
// DefaultMaxIdleConns idle connections) and the retry budget
// (DefaultMaxRetries when 0, none when negative). The provider speaks the
// Messages API (version 2023-06-01) over net/http itself, without an SDK:
// it reads nothing from the environment but what FromEnv reads, sends the
// key as x-api-key (and as a bearer token, as the SDK did, for gateways
// that read that) and only to the base URL's origin (a redirect elsewhere
// is refused), never logs it, and no error message carries it.
//
// # Requests
//
// CompletionRequest.System becomes the system parameter. The history is
// grouped with models/turns: an assistant turn becomes one assistant
// message (a text block if there is text, then one tool_use block per call,
// its input the call's arguments object); a user turn becomes one user
// message (one tool_result block per result, in order, then a text block
// for the user's text). Blank text is left out where the turn has other
// content, else it becomes "(empty)" (the API rejects blank text blocks
// and empty content); a history that starts with an assistant turn gets a first user
// message reading ConversationStart. Tools get an input_schema from their
// JSON schema (each tool's encoding is kept, by content, so that an agent
// sending the same tools with every call checks and encodes them once).
// MaxTokens is the request's, or DefaultMaxTokens (capped at the model's
// output limit) when 0.
//
// # Streams
//
// text_delta events become StreamText; a tool_use block's input arrives as
// input_json_delta fragments and becomes one StreamToolCall (arguments "{}"
// when empty) at its content_block_stop; message_stop becomes StreamDone
// with the usage (input from message_start, output from message_delta;
// input counts cache reads and writes) and the stop reason (tool_use,
// max_tokens, else end_turn). A tool call whose input was cut short by
// max_tokens is dropped; anywhere else, an input that is not a JSON object
// is a broken stream.
//
// # Errors
//
// The provider retries 408, 409, 429, 5xx (529 overloaded included) and
// connection errors before the first byte, up to Config.MaxRetries times
// (the server's x-should-retry decides when it sends one), waiting as its
// retry-after-ms or retry-after asks (a wait over two minutes ends the
// retries) or backing off from half a second to eight seconds.
// What still fails, a connection that breaks mid-stream, an `error` event
// in the stream (overloaded_error, api_error…) and a stream that ends
// without message_stop yield an error wrapping infinity.ErrRetryable. 400
// (wrapping infinity.ErrInvalid), 401, 403 and 404 are not retryable and
// say what to check; a 429 after the retries is an
// *infinity.RateLimitedError carrying the retry-after. Errors are
// classified by HTTP status and the body's error type, never by message
// text; they name the request-id the API gave the request. A cancelled
// context stops the stream and yields ctx.Err().
//
// # Imports
//
// The root package (infinity), models/turns and models/internal/httpapi
// (the HTTP client, retries, event reader and tool encodings it shares
// with models/openai, and the last with models/bedrock); no SDK.
package anthropic
