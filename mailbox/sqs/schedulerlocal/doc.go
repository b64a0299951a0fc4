// Package schedulerlocal is a stand-in for Amazon EventBridge Scheduler, for
// tests and the local harness: it is not Scheduler and checks no signatures,
// roles or quotas. It is an http.Handler speaking the part of Scheduler's
// REST-JSON API that the SDK client (scheduler.Client, pointed at it with
// BaseEndpoint or AWS_ENDPOINT_URL_SCHEDULER) uses for CreateSchedule
// (POST /schedules/{Name}), GetSchedule (GET) and DeleteSchedule (DELETE),
// with the SDK's typed errors: ConflictException (409) for a name that
// exists in its group, ResourceNotFoundException (404), ValidationException
// (400) for what it cannot or will not run.
//
// Only one-time at(yyyy-mm-ddThh:mm:ss) expressions are supported, and only
// SQS targets. At its time a schedule sends Target.Input to the queue its
// target ARN names (the queue URL from GetQueueUrl on the ARN's last part),
// with MessageGroupId from SqsParameters and no dedup id (as Scheduler: a
// FIFO target needs content-based dedup), then deletes itself if its
// ActionAfterCompletion is DELETE. A failed send is retried a few times with
// backoff, then logged and dropped (Scheduler would retry for up to a day,
// then use the target's DLQ, which this stand-in does not model).
//
// A repeated CreateSchedule with the same name and the same non-empty
// ClientToken succeeds without change (idempotency); with another token it
// is a ConflictException. Groups need not be created first.
//
// Time: timers run on an injected infinity.Clock, and WithTimeScale shrinks
// every wait (0.001 fires a 20-minute schedule in 1.2 s) so tests can take
// the long-delay path quickly. State is in memory only: schedules die with
// the process.
//
// Imports: the root package, the AWS SDK v2 sqs client types and the
// standard library.
package schedulerlocal
