//! The phrase tables the intent rules look for, per language, already folded (lower case,
//! no diacritics, plain apostrophes: see `parse::fold`). A phrase matches whole words; where
//! two phrases overlap the longer one wins ("not interested" hides "interested").
//!
//! Languages: `en` English, `de` German, `fr` French, `es` Spanish, `it` Italian, `nl` Dutch,
//! `pt` Portuguese.

/// Phrases by language.
pub(super) type Table = &'static [(&'static str, &'static [&'static str])];

/// The person left the company.
#[rustfmt::skip]
pub(super) const LEFT_COMPANY: Table = &[
    ("en", &[
        "no longer with", "no longer work", "no longer working", "no longer employed",
        "left the company", "left the firm", "left the organisation", "left the organization",
        "i have left", "i've left", "i left", "has left the", "have moved on", "i've moved on",
        "moved on from", "my last day", "is no longer with", "my successor", "my replacement",
        "i have retired", "i've retired", "i retired", "took over my role",
        "taken over my role", "no longer at",
    ]),
    ("de", &[
        "nicht mehr bei", "nicht mehr im unternehmen", "nicht mehr fur", "nicht mehr tatig",
        "unternehmen verlassen", "firma verlassen", "habe das unternehmen", "mein nachfolger",
        "meine nachfolgerin", "mein letzter arbeitstag", "ausgeschieden",
        "nicht mehr in der firma", "in den ruhestand",
    ]),
    ("fr", &[
        "ne fais plus partie", "ne travaille plus", "quitte l'entreprise", "quitte la societe",
        "j'ai quitte", "a quitte la", "mon successeur", "ma successeure", "ne suis plus chez",
        "n'est plus chez", "a la retraite",
    ]),
    ("es", &[
        "ya no trabajo", "ya no estoy en", "deje la empresa", "he dejado la",
        "ya no formo parte", "ya no forma parte", "mi sucesor", "mi sucesora", "ya no trabaja",
    ]),
    ("it", &[
        "non lavoro piu", "non faccio piu parte", "ho lasciato", "lasciato l'azienda",
        "il mio successore", "la mia successora", "non sono piu in", "non lavora piu",
    ]),
    ("nl", &[
        "niet meer werkzaam", "werk niet meer", "niet meer bij", "ben vertrokken",
        "mijn opvolger", "mijn opvolgster", "uit dienst", "heb het bedrijf verlaten",
    ]),
    ("pt", &[
        "ja nao trabalho", "nao trabalho mais", "deixei a empresa", "sai da empresa",
        "meu sucessor", "minha sucessora", "nao faco mais parte", "ja nao faco parte",
    ]),
];

/// Not the right contact.
#[rustfmt::skip]
pub(super) const WRONG_PERSON: Table = &[
    ("en", &[
        "wrong person", "not the right person", "not the right contact", "not the person",
        "not the best person", "not responsible for", "not in charge of", "not my area",
        "not my department", "not the decision maker", "not the decision-maker",
        "you should contact", "you should talk to", "you should speak to", "better to contact",
        "the right person is", "the right contact is", "the person you want", "handles this",
        "is responsible for", "is in charge of", "you want to talk to",
        "you'll want to talk to", "not the correct person", "wrong contact", "i don't handle",
        "i do not handle",
    ]),
    ("de", &[
        "nicht zustandig", "falsche ansprechpartner", "falscher ansprechpartner",
        "falsche ansprechpartnerin", "nicht der richtige", "nicht die richtige",
        "wenden sie sich an", "zustandig ist", "richtige ansprechpartner",
        "richtige ansprechpartnerin", "kummert sich",
    ]),
    ("fr", &[
        "pas la bonne personne", "pas le bon interlocuteur", "pas la bonne interlocutrice",
        "pas en charge", "ne suis pas responsable", "adressez-vous a", "contactez plutot",
        "le bon interlocuteur", "la bonne personne", "ne m'occupe pas", "s'occupe de",
    ]),
    ("es", &[
        "no soy la persona", "persona equivocada", "no soy el responsable",
        "no soy la responsable", "la persona adecuada", "dirijase a", "no me encargo",
        "se encarga de", "contacto equivocado",
    ]),
    ("it", &[
        "non sono la persona", "persona sbagliata", "non sono il responsabile",
        "non sono la responsabile", "non mi occupo", "la persona giusta", "rivolgersi a",
        "si occupa di", "contatto sbagliato",
    ]),
    ("nl", &[
        "niet de juiste persoon", "verkeerde persoon", "niet verantwoordelijk",
        "juiste contactpersoon", "neem contact op met", "verkeerde contactpersoon",
        "gaat hierover",
    ]),
    ("pt", &[
        "nao sou a pessoa", "pessoa errada", "nao sou o responsavel", "nao sou a responsavel",
        "a pessoa certa", "nao cuido", "cuida disso", "contato errado",
    ]),
];

/// Does not want it.
#[rustfmt::skip]
pub(super) const NOT_INTERESTED: Table = &[
    ("en", &[
        "not interested", "no interest", "no thanks", "no thank you", "not for us",
        "not a fit", "not a good fit", "not the right fit", "we're all set", "we are all set",
        "went with another", "went with a competitor", "chose another", "chose a competitor",
        "signed with", "we already have", "we already use", "happy with our current",
        "don't need", "do not need", "no longer need", "no need for", "not looking for",
        "we'll pass", "we will pass", "pass on this", "not relevant", "never going to",
        "decided against", "not something we need", "don't see a need", "no use for",
    ]),
    ("de", &[
        "kein interesse", "nicht interessiert", "kein bedarf", "keinen bedarf",
        "brauchen wir nicht", "nein danke", "haben uns fur", "bereits einen anbieter",
        "sind versorgt", "passt nicht", "anderen anbieter entschieden", "dagegen entschieden",
    ]),
    ("fr", &[
        "pas interesse", "pas interessee", "pas interesses", "aucun interet", "non merci",
        "pas besoin", "pas pour nous", "deja un fournisseur", "avons choisi", "avons opte",
        "ne sommes pas interesses", "ne suis pas interesse", "ne suis pas interessee",
        "ne nous interesse pas", "ne m'interesse pas",
    ]),
    ("es", &[
        "no estamos interesados", "no me interesa", "no nos interesa", "no interesado",
        "no interesada", "no gracias", "no necesitamos", "ya tenemos", "elegimos otro",
        "no es para nosotros", "no estoy interesado", "no estoy interesada", "hemos elegido",
    ]),
    ("it", &[
        "non interessato", "non interessata", "non siamo interessati", "non mi interessa",
        "non ci interessa", "no grazie", "non abbiamo bisogno", "abbiamo gia",
        "abbiamo scelto", "non sono interessato", "non sono interessata",
    ]),
    ("nl", &[
        "geen interesse", "niet geinteresseerd", "nee bedankt", "geen behoefte",
        "hebben al een", "gekozen voor", "niet nodig",
    ]),
    ("pt", &[
        "nao estamos interessados", "nao tenho interesse", "nao temos interesse",
        "nao interessa", "nao obrigado", "nao obrigada", "nao, obrigado", "nao, obrigada",
        "nao precisamos", "ja temos", "escolhemos outro", "nao estou interessado",
        "nao estou interessada",
    ]),
];

/// Not now, later. (Named moments — "in September", "next year" — are read by `when` and
/// count as well.)
#[rustfmt::skip]
pub(super) const LATER: Table = &[
    ("en", &[
        "later", "not now", "not right now", "not at the moment", "not at this time",
        "not yet", "not this year", "not this quarter", "check back", "get back to me",
        "reach out again", "circle back", "touch base", "follow up in", "try again",
        "ask me again", "write again", "write to me again", "contact me again", "too early",
        "too soon", "a few months", "couple of months", "couple months", "no budget",
        "bad timing", "timing isn't right", "timing is not right", "not a priority", "on hold",
        "put on hold", "postponed", "busy right now", "revisit", "not the right time",
        "down the road", "in a while", "some time", "sometime", "in the new year",
        "after the holidays",
    ]),
    ("de", &[
        "spater", "nicht jetzt", "derzeit nicht", "momentan nicht", "aktuell nicht",
        "im moment nicht", "zur zeit nicht", "zurzeit nicht", "noch nicht",
        "melden sie sich wieder", "melden sie sich gerne wieder", "gerne wieder",
        "kein budget", "zu fruh", "ein paar monaten", "einigen monaten", "auf eis",
        "zuruckgestellt", "verschoben",
    ]),
    ("fr", &[
        "plus tard", "pas maintenant", "pas pour le moment", "pas pour l'instant",
        "pas encore", "recontactez-moi", "recontactez moi", "revenez vers moi", "relancez-moi",
        "relancez moi", "trop tot", "pas de budget", "quelques mois", "a la rentree",
        "en suspens", "reporte",
    ]),
    ("es", &[
        "mas adelante", "ahora no", "por ahora no", "de momento no", "en este momento no",
        "todavia no", "aun no", "vuelva a contactar", "vuelve a contactar", "contacteme",
        "escribame", "sin presupuesto", "no tenemos presupuesto", "unos meses", "en pausa",
        "pospuesto",
    ]),
    ("it", &[
        "piu avanti", "non ora", "non adesso", "per ora no", "al momento no", "non ancora",
        "risentiamoci", "ricontattatemi", "ricontattami", "mi ricontatti", "qualche mese",
        "nessun budget", "non c'e budget", "troppo presto", "in sospeso", "rimandato",
    ]),
    ("nl", &[
        "later", "niet nu", "nu niet", "op dit moment niet", "momenteel niet", "nog niet",
        "neem later contact", "neem dan contact", "te vroeg", "geen budget",
        "een paar maanden", "uitgesteld", "in de wacht",
    ]),
    ("pt", &[
        "mais tarde", "agora nao", "por agora nao", "de momento nao", "no momento nao",
        "ainda nao", "volte a contactar", "volte a entrar em contato", "sem orcamento",
        "alguns meses", "adiado", "em espera",
    ]),
];

/// Interest itself: these decide `interested`.
#[rustfmt::skip]
pub(super) const INTERESTED: Table = &[
    ("en", &[
        "interested", "sounds interesting", "sounds good", "sounds great", "demo", "keen",
        "would love", "i'd love", "we'd love", "love to", "let's do it", "count me in",
        "we're ready", "we are ready", "good timing", "perfect timing", "budget approved",
        "budget is approved", "we have budget", "we now have budget", "back on the table",
        "a proposal", "a quote", "send me a proposal", "sign up", "move forward", "go ahead",
        "pilot", "trial", "yes please",
    ]),
    ("de", &[
        "interessiert", "interesse", "klingt gut", "klingt interessant", "demo", "angebot",
        "wir sind bereit", "budget ist da", "budget freigegeben", "ja bitte", "testen",
        "testphase",
    ]),
    ("fr", &[
        "interesse", "interessee", "interesses", "ca m'interesse", "cela m'interesse",
        "nous interesse", "interessant", "demo", "devis", "proposition", "budget valide",
        "nous sommes prets", "essai",
    ]),
    ("es", &[
        "interesado", "interesada", "interesados", "me interesa", "nos interesa", "demo",
        "presupuesto aprobado", "propuesta", "cotizacion", "estamos listos", "prueba",
    ]),
    ("it", &[
        "interessato", "interessata", "interessati", "mi interessa", "ci interessa", "demo",
        "preventivo", "proposta", "budget approvato", "siamo pronti", "prova",
    ]),
    ("nl", &[
        "geinteresseerd", "interesse", "klinkt goed", "klinkt interessant", "demo", "offerte",
        "voorstel", "budget goedgekeurd", "we zijn klaar", "proefperiode",
    ]),
    ("pt", &[
        "interessado", "interessada", "interessados", "tenho interesse", "temos interesse",
        "me interessa", "demo", "proposta", "orcamento aprovado", "estamos prontos", "teste",
    ]),
];

/// Asking to talk: `interested`, unless a named moment weeks away makes it `later`
/// ("let's talk in September").
#[rustfmt::skip]
pub(super) const CONTACT: Table = &[
    ("en", &[
        "let's talk", "lets talk", "let's chat", "let's speak", "let's meet", "call me",
        "give me a call", "give me a ring", "happy to talk", "happy to chat", "set up a call",
        "schedule a call", "book a call", "a quick call", "set up a meeting", "get in touch",
        "reach out", "talk soon", "speak soon", "are you free", "when are you free",
        "works for me", "does tuesday work", "my calendar", "let's do a call", "do a call",
        "a call", "i'm free", "i am free", "more information", "more info", "send me more",
        "tell me more",
    ]),
    ("de", &[
        "lassen sie uns sprechen", "lass uns sprechen", "rufen sie mich an", "ruf mich an",
        "termin", "telefonieren", "gerne", "gern", "melden sie sich",
    ]),
    ("fr", &[
        "appelez-moi", "appelez moi", "discutons", "rendez-vous", "parlons-en", "volontiers",
        "avec plaisir", "on peut en parler", "un appel",
    ]),
    ("es", &[
        "hablemos", "llamame", "llameme", "con gusto", "agendar", "reunion", "una llamada",
    ]),
    ("it", &[
        "sentiamoci", "chiamatemi", "mi chiami", "volentieri", "fissiamo", "una chiamata",
        "un incontro",
    ]),
    ("nl", &[
        "bel me", "bel mij", "laten we", "afspraak", "graag", "even bellen",
    ]),
    ("pt", &[
        "vamos conversar", "ligue-me", "me ligue", "com prazer", "agendar", "uma reuniao",
        "uma chamada",
    ]),
];

/// Asking something.
#[rustfmt::skip]
pub(super) const QUESTION: Table = &[
    ("en", &[
        "how much", "what does it cost", "what's the price", "what is the price", "pricing",
        "price list", "do you support", "does it support", "does it work", "does it integrate",
        "can it", "is it possible", "do you have", "do you offer", "how does", "how do",
        "what's the difference", "what is the difference", "could you explain",
    ]),
    ("de", &[
        "wie viel", "wieviel", "was kostet", "preis", "preise", "preisliste", "gibt es",
        "unterstutzt", "funktioniert", "ist es moglich", "konnen sie", "wie funktioniert",
    ]),
    ("fr", &[
        "combien", "quel est le prix", "tarif", "tarifs", "prix", "est-ce que",
        "est-il possible", "pouvez-vous", "pourriez-vous", "comment fonctionne",
    ]),
    ("es", &[
        "cuanto cuesta", "cuanto", "precio", "precios", "es posible", "pueden", "podrian",
        "tienen", "como funciona",
    ]),
    ("it", &[
        "quanto costa", "quanto", "prezzo", "prezzi", "e possibile", "potete", "avete",
        "come funziona",
    ]),
    ("nl", &[
        "hoeveel", "wat kost", "prijs", "prijzen", "kunnen jullie", "is het mogelijk",
        "hebben jullie", "hoe werkt",
    ]),
    ("pt", &[
        "quanto custa", "quanto", "preco", "precos", "e possivel", "voces tem", "podem",
        "como funciona",
    ]),
];

/// Someone else is named ("my colleague …"): with a `later` or `not_interested` of the
/// sender's own, the reply is mixed and goes to `unclear`.
#[rustfmt::skip]
pub(super) const COLLEAGUE: Table = &[
    ("en", &[
        "my colleague", "a colleague", "our colleague", "my boss", "my manager", "my team",
        "cc'd", "cc'ing", "copied",
    ]),
    ("de", &[
        "mein kollege", "meine kollegin", "kollege", "kollegin", "in kopie",
    ]),
    ("fr", &["mon collegue", "ma collegue", "collegue", "en copie"]),
    ("es", &[
        "mi colega", "mi companero", "mi companera", "colega", "en copia",
    ]),
    ("it", &["il mio collega", "la mia collega", "collega", "in copia"]),
    ("nl", &["mijn collega", "collega", "in de cc"]),
    ("pt", &["meu colega", "minha colega", "colega", "em copia"]),
];

/// "Not now" qualifiers: with disinterest ("not interested right now") they make it `later`.
#[rustfmt::skip]
pub(super) const TEMPORARY: Table = &[
    ("en", &[
        "right now", "at the moment", "for now", "at this time", "currently", "this year",
        "at present",
    ]),
    ("de", &[
        "zurzeit", "zur zeit", "derzeit", "momentan", "im moment", "aktuell", "vorerst",
    ]),
    ("fr", &[
        "pour le moment", "pour l'instant", "actuellement", "en ce moment",
    ]),
    ("es", &["en este momento", "por ahora", "de momento", "actualmente"]),
    ("it", &["al momento", "per ora", "per il momento", "attualmente"]),
    ("nl", &["op dit moment", "momenteel", "voorlopig"]),
    ("pt", &["no momento", "por agora", "de momento", "atualmente"]),
];

/// Interest put off to a moment ("interested, but not until next year"): with a named moment
/// weeks away the reply is `later`, whatever interest it states.
#[rustfmt::skip]
pub(super) const DEFER: Table = &[
    ("en", &[
        "not until", "not before", "only in", "only after", "no earlier than",
    ]),
    ("de", &["erst im", "erst nach", "erst ab", "erst in", "nicht vor"]),
    ("fr", &[
        "pas avant", "seulement en", "seulement apres", "qu'en", "qu'apres",
    ]),
    ("es", &["no antes de", "hasta el", "hasta despues", "solo en"]),
    ("it", &["non prima di", "solo a", "solo dopo", "soltanto"]),
    ("nl", &["niet voor", "pas in", "pas na", "pas volgend"]),
    ("pt", &["nao antes de", "so em", "so depois", "somente"]),
];

/// A moment days away ("Thursday", "tomorrow", "this week"): a reply asking to talk then is
/// hot, whatever later moment it also names ("we replace our CRM in April; let's talk
/// Thursday").
#[rustfmt::skip]
pub(super) const SOON: Table = &[
    ("en", &[
        "monday", "tuesday", "wednesday", "thursday", "friday", "tomorrow", "today",
        "this week", "next week",
    ]),
    ("de", &[
        "montag", "dienstag", "mittwoch", "donnerstag", "freitag", "morgen", "heute",
        "diese woche", "nachste woche",
    ]),
    ("fr", &[
        "lundi", "mardi", "mercredi", "jeudi", "vendredi", "demain", "aujourd'hui",
        "cette semaine", "semaine prochaine",
    ]),
    ("es", &[
        "lunes", "martes", "miercoles", "jueves", "viernes", "manana", "hoy", "esta semana",
        "proxima semana",
    ]),
    ("it", &[
        "lunedi", "martedi", "mercoledi", "giovedi", "venerdi", "domani", "oggi",
        "questa settimana", "prossima settimana",
    ]),
    ("nl", &[
        "maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "morgen", "vandaag",
        "deze week", "volgende week",
    ]),
    ("pt", &[
        "segunda-feira", "terca-feira", "quarta-feira", "quinta-feira", "sexta-feira",
        "amanha", "hoje", "esta semana", "proxima semana",
    ]),
];

/// Words that turn the interest after them around ("not really interested").
#[rustfmt::skip]
pub(super) const NEGATIONS: &[&str] = &[
    "not", "no", "never", "don't", "dont", "isn't", "aren't", "wasn't", "nicht", "kein", "keine",
    "keinerlei", "pas", "plus", "aucun", "non", "niet", "geen", "nao", "nunca", "nie", "jamais",
    "mai",
];

/// Words between a negation and the interest it negates ("not really interested").
#[rustfmt::skip]
pub(super) const INTENSIFIERS: &[&str] = &[
    "really", "that", "very", "so", "too", "particularly", "wirklich", "sehr", "so", "vraiment",
    "tres", "si", "muy", "tan", "molto", "tanto", "echt", "erg", "zo", "muito", "tao", "all", "at",
    "interessiert", "ganz",
];

/// A reply that is only this (a word or two, punctuation aside) is that intent.
#[rustfmt::skip]
pub(super) const WHOLE_REPLY: &[(&str, &[&str])] = &[
    ("interested", &[
        "yes", "yes!", "sure", "ok", "okay", "yes please", "ja", "ja gerne", "oui", "si",
        "sim", "claro", "certo", "absolutely", "definitely", "ja graag", "avec plaisir",
    ]),
    ("not_interested", &[
        "no", "nein", "non", "nee", "nao", "nope", "no thanks", "no thank you", "no, thanks",
    ]),
    ("later", &[
        "later", "later please", "spater", "plus tard", "mas tarde", "mas adelante",
        "piu tardi", "mais tarde", "not now", "later!", "maybe later",
    ]),
];
