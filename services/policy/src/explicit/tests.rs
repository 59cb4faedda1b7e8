//! The explicit-request detector on its own, one language family per test.

use super::*;
use crate::normalize::own_clauses;

fn fires(text: &str) -> bool {
    detect(&own_clauses(text), &[]).is_some()
}

#[test]
fn requests_in_five_languages() {
    for t in [
        "I want to talk to a real person",
        "AGENT!!!",
        "representative please",
        "human please",
        "operator",
        "Can I speak with someone?",
        "0 0 0",
        "000",
        "Quiero hablar con un agente",
        "pásame con una persona, por favor",
        "Je voudrais parler à un conseiller",
        "Passez-moi quelqu'un s'il vous plaît",
        "Ich möchte mit einem Mitarbeiter sprechen",
        "Verbinden Sie mich bitte mit einem Menschen",
        "Quero falar com um atendente",
        "me passa pra uma pessoa de verdade",
        "Why can't I talk to a human?",
        "I said 'agent'!",
    ] {
        assert!(fires(t), "{t}");
    }
}

#[test]
fn negation_quotes_and_other_senses() {
    for t in [
        "I don't need a person, you're doing fine",
        "no quiero un agente",
        "je n'ai pas besoin d'un conseiller",
        "Ich brauche keinen Mitarbeiter",
        "não preciso de um atendente",
        "my friend said 'talk to an agent'",
        "my friend said talk to an agent",
        "my travel agent booked this flight",
        "I need my insurance agent's number",
        "the agent on the phone yesterday was nice",
        "was my dad exposed to agent orange",
        "are you a real person?",
        "the total was $0.00",
        "my account number ends in 000",
        "as if I need a human to reset a password",
        "Quero falar com meu agente de viagens",
    ] {
        assert!(!fires(t), "{t}");
    }
}

#[test]
fn evidence_masks_digits() {
    let e = detect(&own_clauses("press 0"), &[]);
    assert_eq!(e.as_deref(), Some("press 0"));
    let e = detect(&own_clauses("I want to talk to a person"), &[]);
    assert_eq!(e.as_deref(), Some("want to talk to a person"));
}

#[test]
fn italian_requests_fire() {
    for t in [
        "Voglio parlare con un operatore.",
        "Vorrei parlare con un operatore, per cortesia.",
        "avrei bisogno di parlare con un operatore per una bolletta",
        "Mi passi un operatore, per favore.",
        "Trasferiscimi a un umano, grazie.",
        "mi può passare l'operatore?",
        "Posso parlare con un operatore?",
        "È possibile parlare con qualcuno?",
        "posso avere un umano in chat?",
        "mi serve un operatore",
        "Operatore!",
        "OPERATORE SUBITO!!!",
        "un umano per favore",
        "servizio clienti",
        "perché non posso parlare con un operatore?",
        "voglio un umano non un robot",
    ] {
        assert!(fires(t), "{t}");
    }
}

#[test]
fn italian_negations_other_senses_and_reports_do_not_fire() {
    for t in [
        "Non voglio parlare con un operatore, dimmi solo quando arriva il pacco.",
        "non voglio parlare con nessuno, devo solo cambiare la password",
        "Non mi passare a nessuno, dimmi solo il saldo.",
        "Preferisco risolvere con te piuttosto che parlare con un operatore.",
        "Il mio agente di viaggio ha fatto la prenotazione",
        "vorrei parlare con l'agente immobiliare",
        "voglio passare a un altro operatore",
        "voglio cambiare operatore telefonico",
        "mia sorella mi ha detto di parlare con un operatore",
        "sto parlando con un umano?",
        "sei un umano?",
        "Sono studentessa di diritti umani, avete sconti?",
        "come se volessi parlare con un operatore",
    ] {
        assert!(!fires(t), "{t}");
    }
}

#[test]
fn dutch_and_flemish_requests_fire() {
    for t in [
        "Kunt u mij doorverbinden met een medewerker?",
        "verbind me door met iemand van de klantenservice aub",
        "Ik wil een medewerker spreken.",
        "ik wil graag met een echt mens praten",
        "Ik zou graag even iemand van de klantenservice willen spreken over mijn factuur.",
        "kunt ge mij efkes doorverbinden met iemand van den dienst",
        "ik heb een medewerker nodig",
        "ik wil met een mens praten niet met een chatbot",
        "medewerker",
        "Medewerker svp!",
        "mens aub",
        "een mens graag",
        "waarom kan ik niet met een mens praten?",
    ] {
        assert!(fires(t), "{t}");
    }
}

#[test]
fn dutch_negations_other_senses_and_reports_do_not_fire() {
    for t in [
        "ik hoef geen medewerker, zeg me gewoon wanneer mijn pakket komt",
        "je hoeft me niet met een mens te verbinden, het lukt wel zo",
        "geen agent nodig, alleen het IBAN-nummer",
        "ik wil echt geen mens spreken, ik haat bellen",
        "ik vraag niet om een mens, ik vraag om een factuur in pdf",
        "vorige week wilde ik een medewerker spreken",
        "Mijn reisagent heeft de boeking gedaan, kan ik die zelf nog wijzigen?",
        "wat is het agent nummer op mijn contract",
        "mijn buurman zei dat ik een medewerker moest bellen",
        "ben jij een mens?",
        "alsof ik een medewerker nodig heb",
    ] {
        assert!(!fires(t), "{t}");
    }
}

#[test]
fn russian_requests_fire_in_every_case_they_use() {
    for t in [
        "Соедините меня с оператором, пожалуйста.",
        "переключи меня на человека плз",
        "Я хочу поговорить с живым человеком.",
        "хочу к человеку",
        "Мне бы с менеджером поговорить.",
        "Мне нужно поговорить с кем-то из вашей команды, это важно.",
        "Можно оператора, пожалуйста?",
        "Могу я поговорить с менеджером?",
        "мне нужен живой оператор",
        "Оператор!",
        "ОПЕРАТОРА!!!",
        "Оператора мне.",
        "Менеджера!!",
        "Я бы хотел обсудить это с вашим специалистом.",
        "почему я не могу поговорить с человеком?",
        "soedinite s operatorom pozhaluysta",
        "khochu pogovorit s chelovekom",
        "mozhno operatora?",
    ] {
        assert!(fires(t), "{t}");
    }
}

#[test]
fn russian_negations_reports_and_questions_do_not_fire() {
    for t in [
        "я не хочу говорить с менеджером, просто отмените заказ",
        "Мне не нужен оператор, просто скажите, когда придёт посылка.",
        "Не соединяйте ни с кем, у меня просто вопрос про счёт.",
        "Человек мне не нужен, ответьте на простой вопрос",
        "ne nuzhen mne operator",
        "Сын написал мне «проси оператора», но я попробую сама",
        "На форуме пишут, что надо требовать менеджера",
        "подруга сказала соединиться с оператором",
        "Мой турагент сказал, что билеты уже оплачены",
        "страховой агент просит копию квитанции",
        "я говорю с человеком?",
        "вы человек или бот?",
        "права человека",
    ] {
        assert!(!fires(t), "{t}");
    }
}
