// Package sqs is the cloud InputSender: it delivers input messages to the
// FIFO input queue (message group = thread), directly, through the delay
// relay, or through an EventBridge Scheduler one-time schedule.
//
// The three paths of Sender.Send, chosen by the delay d = at - now:
//
//   - d <= 0: one SendMessage to the FIFO input queue, MessageGroupId = the
//     thread, MessageDeduplicationId = a stable id derived from the thread
//     and the message id (DedupID), body = the InputMessage JSON. A repeat within the
//     queue's five-minute window is dropped by SQS; later repeats are applied
//     once by the thread, which dedups on the "id" the body carries.
//   - 0 < d <= 900 s: one SendMessage to the standard relay queue with
//     DelaySeconds = ceil(d) (never 0), body = a relay envelope
//     {"message": <InputMessage>, "at": <RFC 3339>}. The relay function
//     (lambda.Relay, INFINITY_ROLE=relay) hands each record body to Relay.Forward,
//     which sends the message to the input queue exactly as an immediate
//     Send would, with the same dedup id. A record that arrives before its
//     "at" (clock skew) is forwarded anyway: DelaySeconds is rounded up, so
//     it is never early by more than the skew, and re-delaying would add a
//     second copy in flight for nothing.
//   - d > 900 s: one CreateSchedule: a one-time at() schedule, in UTC,
//     rounded up to the second, FlexibleTimeWindow OFF, ActionAfterCompletion
//     DELETE (fired schedules do not pile up), targeting the input queue with
//     MessageGroupId = the thread and Input = the InputMessage JSON. Its name
//     is derived from (thread, message id) (ScheduleName), so names never
//     collide across threads and a repeated Send is the same schedule: the
//     ConflictException it gets is success (the first schedule wins).
//
// Scheduler cannot set a MessageDeduplicationId on a FIFO target: the input
// queue must have ContentBasedDeduplication on (CreateQueues does that). The
// body carries the stable message id, so the thread still applies it once.
// Message ids need only be unique per thread: CreateQueues sets
// DeduplicationScope to messageGroup. On a queue-wide scope (SQS's default,
// and fauxqs, which ignores the attribute) one id sent to two threads
// within five minutes would reach only the first.
//
// The 900 s limit is AWS's maximum DelaySeconds; it is enforced here (some
// emulators accept more). Scheduler's own request limits (not checked here)
// apply to the Input of a long delay: long delays are meant for small
// wake-ups. The schedule group must exist (the deployment creates it).
//
// Errors: an invalid message is infinity.ErrInvalid; SDK errors are wrapped
// once, and those the SDK's retry classification calls retryable (throttling,
// 5xx, broken connections) also wrap infinity.ErrRetryable.
//
// DecodeInput decodes an input-queue body (the reference runtime's JSON, with
// or without "id"). CreateQueues creates the queues for tests and the local
// harness. The sub-package schedulerlocal is an in-memory stand-in for
// EventBridge Scheduler.
//
// Imports: the root package, the AWS SDK v2 (sqs, scheduler, core retry
// classification) and the standard library.
package sqs
