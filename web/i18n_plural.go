package web

import (
	"fmt"
	"sync"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"

	"github.com/microapps/microapps/internal/words"
)

// A message that takes a count has plural forms, and x/text picks the form
// by CLDR's rules for the language: English says "1 warning" and "0
// warnings", French "0 avertissement" and "1 avertissement". Such a message
// sits in pluralMessages rather than messages, under a key Lang.T looks up
// like any other, so a call site does not change when its message gains
// forms. Both languages give a "one" and an "other" form: whole numbers
// need no more in either, and any other category CLDR may name reads
// "other".
//
// The counts are printed by x/text's message.Printer, which groups digits
// the language's way ("1,234", "1 234").

// PluralMessage is a message whose words follow one or more of its
// arguments: either one count's forms are the whole message (text empty),
// or text holds ${name} where each named count's words go.
type PluralMessage struct {
	text   string
	counts []CountForms
}

// CountForms are the words for one counted argument. Each form is a format
// string over the message's arguments; where a message has several counts,
// each form names its argument (%[2]d) since the forms are printed apart.
type CountForms struct {
	name       string
	arg        int // from 1, as plural.Selectf counts
	one, other string
}

// forms is a message that is the words of argument arg, counted.
func Forms(arg int, one, other string) PluralMessage {
	return PluralMessage{counts: []CountForms{{arg: arg, one: one, other: other}}}
}

// counts is a message with several counted arguments, each written
// ${name} in text.
func Counts(text string, c ...CountForms) PluralMessage {
	return PluralMessage{text: text, counts: c}
}

// named is the forms of argument arg, written ${name} in a counts message.
func Named(name string, arg int, one, other string) CountForms {
	return CountForms{name: name, arg: arg, one: one, other: other}
}

// catalogMessages turns m into x/text catalog messages for l.
func (m PluralMessage) catalogMessages(l Lang) []catalog.Message {
	typo := func(s string) string { return s }
	if l == LangFR {
		// French typography, as settings.go gives the plain messages.
		typo = words.French
	}
	sel := func(c CountForms) catalog.Message {
		return plural.Selectf(c.arg, "%d", plural.One, typo(c.one), plural.Other, typo(c.other))
	}
	if m.text == "" {
		return []catalog.Message{sel(m.counts[0])}
	}
	out := make([]catalog.Message, 0, len(m.counts)+1)
	for _, c := range m.counts {
		out = append(out, catalog.Var(c.name, sel(c)))
	}
	return append(out, catalog.String(typo(m.text)))
}

// pluralPrinters print the plural messages, one printer per language. They
// are built on first use, once every file's init has added its messages.
var pluralPrinters = sync.OnceValue(func() map[Lang]*message.Printer {
	b := catalog.NewBuilder()
	for l, ms := range pluralMessages {
		for key, m := range ms {
			if err := b.Set(l.tag(), key, m.catalogMessages(l)...); err != nil {
				panic(fmt.Sprintf("web: plural message %s %q: %v", l, key, err))
			}
		}
	}
	ps := make(map[Lang]*message.Printer, len(supportedLangs))
	for _, l := range supportedLangs {
		ps[l] = message.NewPrinter(l.tag(), message.Catalog(b))
	}
	return ps
})

// AddMessages adds an audience's own messages, plain and counted, to every
// language's catalog. Call it from an init function: the counted messages
// are compiled at their first use.
func AddMessages(plain map[Lang]map[string]string, counted map[Lang]map[string]PluralMessage) {
	for l, m := range plain {
		for k, v := range m {
			if l == LangFR {
				v = words.French(v) // as every page's French
			}
			messages[l][k] = v
		}
	}
	for l, m := range counted {
		for k, v := range m {
			pluralMessages[l][k] = v
		}
	}
}
