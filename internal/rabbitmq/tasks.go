package rabbitmq

// The message format: the body of a message is one notification task as a JSON object, or
// several as a JSON array; the publisher writes both, the consumer reads both.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"txn/internal/pipeline"
)

// messageID names a message by its tasks: the notification id of a single task (as the
// notifier's logs and duplicate checks expect), else the first one's with the count.
func messageID(tasks []pipeline.Task) string {
	id := tasks[0].NotificationID.String()
	if len(tasks) > 1 {
		id += "+" + strconv.Itoa(len(tasks)-1)
	}
	return id
}

// EncodeTasks is a message body: one task as a JSON object, several as a JSON array.
func EncodeTasks(tasks []pipeline.Task) ([]byte, error) {
	var body []byte
	var err error
	if len(tasks) == 1 {
		body, err = json.Marshal(tasks[0])
	} else {
		body, err = json.Marshal(tasks)
	}
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: encode tasks: %w", err)
	}
	return body, nil
}

// DecodeTasks reads a message body that EncodeTasks wrote.
func DecodeTasks(body []byte) ([]pipeline.Task, error) {
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) > 0 && body[0] == '[' {
		var tasks []pipeline.Task
		if err := json.Unmarshal(body, &tasks); err != nil {
			return nil, err
		}
		if len(tasks) == 0 {
			return nil, errors.New("no tasks in the message")
		}
		return tasks, nil
	}
	var t pipeline.Task
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, err
	}
	return []pipeline.Task{t}, nil
}
