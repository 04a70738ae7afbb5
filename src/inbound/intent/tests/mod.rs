//! The rules one by one (the corpus of whole replies is in tests/fixtures/intent/, read by
//! `corpus.rs` below).

use super::*;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 3, 10).unwrap()
}

fn of(text: &str) -> IntentVerdict {
    intent_of(text, day(), &["mary@jones.example"], &Vec::new())
}

fn intent(text: &str) -> Intent {
    of(text).intent
}

#[test]
fn one_word_replies() {
    assert_eq!(intent("later"), Intent::Later);
    assert_eq!(intent("Later, thanks!"), Intent::Later);
    assert_eq!(intent("Später bitte"), Intent::Later);
    assert_eq!(intent("Yes!"), Intent::Interested);
    assert_eq!(intent("Oui"), Intent::Interested);
    assert_eq!(intent("No."), Intent::NotInterested);
    assert_eq!(intent("Thanks"), Intent::Unclear);
    assert_eq!(of("later").rule, "the whole reply");
}

#[test]
fn the_two_replies_of_the_issue() {
    let v = of("later");
    assert_eq!((v.intent, v.when), (Intent::Later, None));
    let v = of(
        "I've moved on from Jones & Partners; please reach out to my successor, \
                Dan Brooks (dan.brooks@example.org)",
    );
    assert_eq!(v.intent, Intent::LeftCompany);
    assert_eq!(v.referrals.len(), 1);
    assert_eq!(
        v.referrals[0].email.as_deref(),
        Some("dan.brooks@example.org")
    );
    assert_eq!(v.referrals[0].name.as_deref(), Some("Dan Brooks"));
}

#[test]
fn a_named_moment_makes_it_later_and_is_kept() {
    let v = of("Please try me again in September.");
    assert_eq!(v.intent, Intent::Later);
    assert_eq!(
        v.when.map(|w| w.date.to_string()),
        Some("2027-09-01".into())
    );
    let v = of("Let's talk in September, we're swamped until then.");
    assert_eq!((v.intent, v.rule), (Intent::Later, "talk, but later"));
    // Next week is soon: that is a hot lead.
    assert_eq!(
        intent("Call me next week, happy to talk."),
        Intent::Interested
    );
}

#[test]
fn negated_interest_is_disinterest() {
    assert_eq!(
        intent("We are not really interested."),
        Intent::NotInterested
    );
    assert_eq!(
        intent("Wir sind nicht wirklich interessiert."),
        Intent::NotInterested
    );
    assert_eq!(
        intent("No problem at all, very interested!"),
        Intent::Interested
    );
    let v = of("not interested");
    assert_eq!(v.evidence, Some(("not interested".into(), "en")));
}

#[test]
fn mixed_replies_go_to_a_person() {
    assert_eq!(
        intent("Not now for me, but my colleague Anna Weber is looking at tools like yours."),
        Intent::Unclear
    );
    assert_eq!(
        intent("Interested in principle, but we already have a vendor."),
        Intent::Unclear
    );
    assert_eq!(
        intent("Not now. What does it cost though?"),
        Intent::Unclear
    );
    assert_eq!(intent("Not interested right now."), Intent::Later);
}

#[test]
fn questions_and_interest() {
    assert_eq!(intent("How much is the enterprise plan?"), Intent::Question);
    assert_eq!(intent("Does it work with Salesforce?"), Intent::Question);
    assert_eq!(intent("Send me a demo link"), Intent::Interested);
    assert_eq!(intent("Klingt gut, rufen Sie mich an."), Intent::Interested);
}

#[test]
fn wrong_person_and_left_company_in_other_languages() {
    assert_eq!(
        intent("Je ne travaille plus chez Dupont."),
        Intent::LeftCompany
    );
    assert_eq!(
        intent("Ich bin dafür nicht zuständig."),
        Intent::WrongPerson
    );
    assert_eq!(intent("No soy la persona adecuada."), Intent::WrongPerson);
}

#[test]
fn configured_phrases_decide_first() {
    let extra = vec![(Intent::Later, vec!["ping me in spring".to_string()])];
    let v = intent_of("Interested! Ping me in spring.", day(), &[], &extra);
    assert_eq!((v.intent, v.rule), (Intent::Later, "configured phrase"));
    assert_eq!(v.evidence, Some(("ping me in spring".into(), "config")));
    // Spring has begun on 10 March: "in spring" is a month on.
    assert_eq!(
        v.when.map(|w| w.date.to_string()),
        Some("2027-04-10".into())
    );
}

#[test]
fn nothing_at_all_is_unclear() {
    let v = of("");
    assert_eq!(
        (v.intent, v.rule, v.evidence),
        (Intent::Unclear, "no rule matched", None)
    );
}

mod corpus;
