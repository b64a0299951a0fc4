// Package bedrock is an infinity.ModelProvider for the Amazon Bedrock
// ConverseStream API, with its own small client over net/http: requests
// signed with SigV4 (tools/httpclient), responses read by a decoder of the
// AWS event-stream framing. (The SDK's bedrockruntime client would cost
// the Lambda bootstrap about 1 MB of its size budget.)
//
// # Configuration
//
// New takes a Config: an aws.Config and the models served (at least one,
// with context window and output limit; the first is the default of a
// request with no model). Model IDs are Bedrock's: foundation model IDs,
// inference profile IDs ("us.anthropic.claude-…") or ARNs.
//
// Of the aws.Config the provider uses the region and the credentials
// provider (both required; an invalid region is refused), the HTTP client
// (default: the provider's own, on a clone of http.DefaultTransport with
// DefaultMaxIdleConns idle connections and a 10-minute response-header
// timeout), RetryMaxAttempts (default DefaultMaxAttempts, 3) and the
// endpoint settings, resolved as the SDK's client resolves them: the
// service endpoint a configuration source reports
// (AWS_ENDPOINT_URL_BEDROCK_RUNTIME, a profile's services section) unless
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS says to ignore it or only
// AWS_ENDPOINT_URL is set, else BaseEndpoint (AWS_ENDPOINT_URL), else
// https://bedrock-runtime.{region}.{partition's DNS suffix}, its FIPS
// ("bedrock-runtime-fips") or dual-stack (the partition's dual-stack
// suffix) variant when a source asks for one. A configured endpoint with
// FIPS or dual-stack is refused, as the SDK refuses it. The endpoint's
// path, if any, comes before the operation's. Provider.Endpoint reports
// the endpoint resolved. Other aws.Config fields (Retryer, RetryMode,
// ...) are not used.
//
// Package models/bedrock/chain's FromConfig builds the provider from the
// default AWS configuration chain, config.LoadDefaultConfig with the given
// options: credentials from the environment, the shared config and
// credentials files, SSO, web identity, or container and instance roles;
// the region from AWS_REGION, the profile, or config.WithRegion. (It is a
// package of its own so that the Lambda bootstrap, which has its AWS
// configuration from the environment, does not link the config package.)
// Credentials are never logged by the provider, and its error messages
// carry none.
//
// # Wire
//
// One request: POST {endpoint}/model/{model ID}/converse-stream, the model
// ID escaped as one path segment (everything but letters, digits and
// "-_.~" percent-encoded, as the SDK does: "…-v1:0" is "…-v1%3A0"), with
// Content-Type application/json, a User-Agent naming this package, and
// SigV4 headers (service "bedrock", the region; the payload hash is sent
// as X-Amz-Content-Sha256 and signed).
//
// The answer to a request that started is application/vnd.amazon.eventstream:
// binary messages of a 12-byte prelude (total length, headers length, and
// a CRC-32 of the eight bytes before it), headers (name, value type,
// value; all ten value types are read, the string headers :message-type,
// :event-type, :exception-type, :error-code and :error-message are used),
// a payload, and a CRC-32 of the message. Both checksums are verified, a
// message's headers are bounded at 128 KiB and its payload at 16 MiB, and
// a stream that ends inside a message, or carries a malformed one, is
// broken. Messages are decoded into one buffer per stream.
//
// # Requests
//
// CompletionRequest.System becomes one system text block (none when
// blank). The history is grouped with models/turns: an assistant turn
// becomes one assistant message (a text block if there is text, then one
// toolUse block per call: toolUseId, name, and the call's arguments object
// as the input, as it was streamed, numbers exact); a user turn becomes
// one user message (one toolResult block per result, in order — its text
// parts as text blocks and its PNG, JPEG, GIF and WebP image parts as
// image blocks (format and base64 bytes), status "error" when IsError —
// then a text block for the user's text). Bedrock rejects blank text and
// empty content, so they are replaced with "(empty)"; a history that
// starts with an assistant turn (or is empty) gets a first user message
// reading ConversationStart. Tools become toolConfig toolSpec entries
// (name, description when set) whose inputSchema json is the tool's JSON
// schema (an object schema, numbers exact; {"type":"object","properties":{}}
// when none). The inferenceConfig's maxTokens is the request's MaxTokens,
// or the model's MaxOutput when 0 (left to Bedrock for a model not in
// Config.Models); no other inference parameter is sent.
//
// # Streams
//
// Event messages are read by their :event-type. contentBlockDelta text
// becomes StreamText. A toolUse block starts with contentBlockStart
// (toolUseId and name) and its input arrives as JSON fragments in
// contentBlockDelta events, collected per content block index, so that
// parallel calls come through whole; each becomes one StreamToolCall
// (arguments "{}" when empty) at its contentBlockStop. messageStop gives
// the stop reason (tool_use → StopToolUse, max_tokens → StopMaxTokens,
// anything else → StopEnd) and the metadata event the usage (input counts
// cache reads and writes); StreamDone comes when the stream has ended with
// both. A tool call whose input was cut short by max_tokens is dropped;
// anywhere else an input that is not a JSON object is a broken stream.
// Other events (messageStart, reasoning deltas, events the API adds) are
// skipped.
//
// # Errors
//
// Before the stream starts, what the SDK's standard retryer retries is
// sent again, up to the attempts configured, after its waits (a random
// part of 50 ms·2^n, or 1 s·2^n after throttling, at most 20 s): errors of
// sending the request (not a host name that does not resolve), 500, 502,
// 503 and 504 answers, throttling error codes (ThrottlingException, …),
// RequestTimeout codes and a 429 whose error code Bedrock does not model.
// A started stream is never retried here. Unlike the SDK, the provider
// keeps no client-wide retry quota.
//
// Error answers ({"message": ...}, the code from the X-Amzn-ErrorType
// header or the body's code or __type) and exception messages in the
// stream (:exception-type, {"message": ...}) are an *Error, classified by
// code, never by message text. ThrottlingException, and a 429 answer of a
// code Bedrock does not model, is an *infinity.RateLimitedError (carrying
// the answer's retry-after, if any). ServiceUnavailableException, InternalServerException,
// ModelNotReadyException, ModelStreamErrorException, ModelTimeoutException
// and ModelErrorException — after the retries, or in the stream — as well
// as any other HTTP 408 or 5xx answer, connection errors, a stream that
// breaks (a connection lost, a bad checksum, a message that does not
// decode, an error message or an exception of another type) and a stream
// that ends before messageStop and metadata wrap infinity.ErrRetryable:
// the engine discards what was streamed and retries. AccessDeniedException
// (and other 401/403 answers) says to check the AWS credentials, IAM
// permission and model access; ResourceNotFoundException says to check the
// model ID and region; ValidationException (and other 400 answers) wraps
// infinity.ErrInvalid; ServiceQuotaExceededException points at the
// account's quotas. None of these is retryable; neither is a failure to
// get credentials (nothing is sent then). A cancelled context stops the
// request, a retry's wait or the stream promptly and yields ctx.Err().
//
// # Imports
//
// The root package (infinity), models/turns, models/internal/httpapi (its
// default client, Clip and tool cache), internal/awsendpoint (the
// endpoint, resolved as the SDK's clients resolve theirs),
// internal/awsjson (AWS error bodies and throttling codes),
// internal/backoff, tools/httpclient (SigV4,
// with aws-sdk-go-v2's aws/signer/v4) and github.com/aws/aws-sdk-go-v2/aws
// (aws.Config); models/bedrock/chain adds aws-sdk-go-v2/config. The tests
// also use aws/protocol/eventstream (to encode the test server's streams
// and as the reference the frame decoder is fuzzed against).
package bedrock
