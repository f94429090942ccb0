package plugins

// Poisoned is what every string of a poisoned event holds (see Poison).
const Poisoned = "SLUICE-POISONED-EVENT: this *plugins.Event was recycled after its invocation; a function must not keep it"

// Poison overwrites ev so that a function that kept it after returning
// (see Handler) reads an obviously wrong event rather than another
// record's: every string is Poisoned, Data is Poisoned as a JSON string,
// the Kafka position is -1. A Kafka trigger poisons its recycled events
// when its PoisonEvents debug option is on (`sluice serve` with
// SLUICE_DEBUG_POISON_EVENTS=1); plugintest.Run does it in a function's
// tests.
func Poison(ev *Event) {
	*ev = Event{
		ID: Poisoned, Source: Poisoned, Type: Poisoned, Subject: Poisoned,
		DataContentType: "application/json", DataSchema: Poisoned,
		Data:          []byte(`"` + Poisoned + `"`), // a copy of its own: the function may write into it
		DataValidJSON: true,
		PartitionKey:  Poisoned, KafkaTopic: Poisoned, KafkaPartition: -1, KafkaOffset: -1,
	}
}

// IsPoisoned reports whether ev was poisoned by Poison.
func IsPoisoned(ev *Event) bool { return ev.ID == Poisoned }
