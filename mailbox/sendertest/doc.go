// Package sendertest is the conformance suite every infinity.InputSender
// implementation runs: the local in-process sender with a fake clock, and
// later senders on real queues (SQS FIFO), where delivery is observed by
// reading the queue and delays run on real time.
//
// An implementation's test calls Run with a function building a fresh
// Harness for each case. The suite checks field fidelity, per-thread FIFO
// order of immediate sends, delivery to several threads, delays (not before
// their time, delivered after it), past times, validation, repeated sends of
// one message id (at least once) and cancelled contexts.
//
// Imports: the standard library, the root package and clocktest.
package sendertest
