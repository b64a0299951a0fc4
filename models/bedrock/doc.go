// Package bedrock is an infinity.ModelProvider for the Amazon Bedrock
// ConverseStream API, through aws-sdk-go-v2's bedrockruntime client
// (AWS event-stream framing over HTTP, SigV4-signed).
//
// # Configuration
//
// New takes a Config: the client (anything with the ConverseStream method
// of *bedrockruntime.Client, the ConverseStreamAPI interface) and the
// models served (at least one, with context window and output limit; the
// first is the default of a request with no model). Model IDs are
// Bedrock's: foundation model IDs, inference profile IDs
// ("us.anthropic.claude-…") or ARNs.
//
// Package models/bedrock/chain's FromConfig builds the client from the
// default AWS configuration chain, config.LoadDefaultConfig with the given
// options: credentials from the environment, the shared config and
// credentials files, SSO, web identity, or container and instance roles;
// the region from AWS_REGION, the profile, or config.WithRegion. (It is a
// package of its own so that the Lambda bootstrap, which has its AWS
// configuration from the environment, does not link the config package.)
// The SDK honours
// AWS_ENDPOINT_URL_BEDROCK_RUNTIME (or AWS_ENDPOINT_URL, or a profile's
// endpoint_url) to send the requests elsewhere, e.g. to a VPC endpoint or
// a local test server. The SDK's retryer (3 attempts by default;
// config.WithRetryMaxAttempts or config.WithRetryer to change it) retries
// throttling, 5xx and connection errors before the response starts.
// Credentials are never logged by the provider, and its error messages
// carry none.
//
// # Requests
//
// CompletionRequest.System becomes one system text block (none when
// blank). The history is grouped with models/turns: an assistant turn
// becomes one assistant message (a text block if there is text, then one
// toolUse block per call: toolUseId, name, and the call's arguments object
// as the input document, numbers kept exact); a user turn becomes one user
// message (one toolResult block per result, in order — its text and image
// parts as content, status "error" when IsError — then a text block for
// the user's text). Bedrock rejects blank text and empty content, so they
// are replaced with "(empty)"; a history that starts with an assistant
// turn (or is empty) gets a first user message reading ConversationStart.
// Tools become toolConfig toolSpec entries whose inputSchema json is the
// tool's JSON schema (an object schema; {"type":"object","properties":{}}
// when none). The inference
// configuration's maxTokens is the request's MaxTokens, or the model's
// MaxOutput when 0 (left to Bedrock for a model not in Config.Models).
//
// # Streams
//
// contentBlockDelta text becomes StreamText. A toolUse block starts with
// contentBlockStart (toolUseId and name) and its input arrives as JSON
// fragments in contentBlockDelta events, collected per content block
// index, so that parallel calls come through whole; each becomes one
// StreamToolCall (arguments "{}" when empty) at its contentBlockStop.
// messageStop gives the stop reason (tool_use → StopToolUse, max_tokens →
// StopMaxTokens, anything else → StopEnd) and the metadata event the usage
// (input counts cache reads and writes); StreamDone comes when the stream
// has ended with both. A tool call whose input was cut short by
// max_tokens is dropped; anywhere else an input that is not a JSON object
// is a broken stream.
//
// Two per-call options work around smithy-go v1.28.9. Each call gets a
// restJson1 protocol of its own: the client's shared one decodes all event
// streams with one codec that is not safe for concurrent streams. And the
// request body is sent without its WriteTo method: smithy-go closes the
// body once the response headers arrive, after which WriteTo returns
// io.EOF, which net/http (reading the body once more after its
// Content-Length) can take for a failed request write and close the
// connection the event stream is being read from.
//
// # Errors
//
// Errors are classified with errors.As against the SDK's typed errors,
// never by message text. ThrottlingException, ServiceUnavailableException,
// InternalServerException, ModelNotReadyException,
// ModelStreamErrorException, ModelTimeoutException and
// ModelErrorException — returned by the request after the SDK's retries,
// or arriving as exception events in the stream — as well as any other
// HTTP 429, 408 or 5xx response, connection errors, a connection that
// breaks mid-stream and a stream that ends before messageStop and
// metadata yield an error wrapping infinity.ErrRetryable: the engine
// discards what was streamed and retries. AccessDeniedException (and
// other 401/403 responses) says to check the AWS credentials, IAM
// permission and model access; ResourceNotFoundException says to check the
// model ID and region; ValidationException wraps infinity.ErrInvalid;
// ServiceQuotaExceededException points at the account's quotas. None of
// these is retryable. A cancelled context stops the stream promptly and
// yields ctx.Err().
//
// # Imports
//
// The root package (infinity), models/turns,
// github.com/aws/aws-sdk-go-v2 (aws, config, service/bedrockruntime with
// its types, document and schemas packages) and github.com/aws/smithy-go
// (document, transport/http and its restjson1 protocol). The tests also
// use aws/protocol/eventstream, aws/retry, aws/ratelimit and credentials.
package bedrock
