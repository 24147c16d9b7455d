"""Tests for chatbot.collect.labels: which question(s) a post answers, from its text."""

from __future__ import annotations

import time

import pytest

from chatbot.collect.labels import Answer, Attribution, PostContext, attribute, attribute_html
from chatbot.kinds import PostKind

SIX = PostContext(question_count=6, current_question=2)


def answered(text: str, context: PostContext = SIX) -> list[tuple[int, str | None]]:
    """The (question, part) pairs a post is attributed to."""
    return [(a.question, a.part) for a in attribute(text, context).answers]


def kind(text: str, context: PostContext = SIX) -> PostKind:
    return attribute(text, context).kind


# --- labels ---------------------------------------------------------------------------------


def test_colon_label_answers_that_question() -> None:
    """ "A1: ..." answers Q1 with the text after the label."""
    assert attribute("A1: We use exit tickets #edchat", SIX) == Attribution(
        PostKind.ANSWER, (Answer(1, "We use exit tickets #edchat"),)
    )


@pytest.mark.parametrize(
    "text",
    [
        "A3. choice boards",
        "A3) choice boards",
        "a3 - choice boards",
        "A3 \u2013 choice boards",  # en dash
        "A3 \u2014 choice boards",  # em dash
        "A3; choice boards",
        "A3 : choice boards",
        "A3, choice boards",
        "A3 choice boards",
        "Answer 3: choice boards",
        "A 3: choice boards",
    ],
)
def test_every_separator_form_is_a_label(text: str) -> None:
    """Each common way of writing the label ("A3.", "a3 -", "A 3:", "Answer 3:") answers Q3."""
    result = attribute(text, SIX)
    assert result.answers == (Answer(3, "choice boards"),)


def test_part_letter_is_kept() -> None:
    """ "A1a" answers Q1, part "a"."""
    assert answered("A1a: picture walks") == [(1, "a")]


def test_combined_labels_answer_each_question_with_the_same_text() -> None:
    """ "A1/A2" and "A3 & A4" give the same text to both questions."""
    assert attribute("A1/A2: relationships", SIX).answers == (
        Answer(1, "relationships"),
        Answer(2, "relationships"),
    )
    assert answered("A3 & A4 - time") == [(3, None), (4, None)]


def test_several_labels_split_the_text_between_them() -> None:
    """ "A1: x A2: y" gives each question the text up to the next label."""
    assert attribute("A1: Kahoot A2: Padlet #edchat", SIX).answers == (
        Answer(1, "Kahoot"),
        Answer(2, "Padlet #edchat"),
    )


def test_same_label_twice_is_one_answer() -> None:
    """Two "A3:" parts in one post are joined into one answer to Q3."""
    assert attribute("A3: boards.\nA3: playlists", SIX).answers == (
        Answer(3, "boards.\nplaylists"),
    )


def test_label_after_leading_hashtag_keeps_the_hashtag_in_the_text() -> None:
    """ "#edchat A2: ..." answers Q2 and the text keeps "#edchat"; only the label goes."""
    assert attribute("#edchat A2: Padlet walls", SIX).answers == (
        Answer(2, "#edchat Padlet walls"),
    )


def test_label_after_leading_mentions() -> None:
    """ "@mod@host @co A3 ..." answers Q3."""
    assert answered("@mod@mastodon.education @co A3 stations") == [(3, None)]


def test_fullwidth_label_is_recognised_and_text_kept_as_written() -> None:
    """Full-width "A1:" is read as "A1:" (NFKC) while the answer text keeps its own characters."""
    fullwidth_label = "\uff21\uff11\uff1a"  # full-width A, 1 and colon
    fullwidth_ok = "\uff2f\uff2b \u3060\u3088"  # full-width "OK" and hiragana
    assert attribute(fullwidth_label + fullwidth_ok, SIX).answers == (Answer(1, fullwidth_ok),)


def test_spanish_and_french_r_labels() -> None:
    """ "R1:" (respuesta, réponse) and "Réponse 2 :" are answer labels."""
    assert answered("R1: usamos estaciones") == [(1, None)]
    assert answered("Réponse 2 : des cercles") == [(2, None)]


def test_label_after_sentence_punctuation() -> None:
    """A clear label after "!" or "." mid-post counts ("Late to the party! A1: ...")."""
    assert answered("Late to the party! A1: circles") == [(1, None)]


def test_trailing_label_set_off_by_a_dash() -> None:
    """ "Restorative circles - A3 #chat" answers Q3, with the label and dash removed."""
    assert attribute("Restorative circles - A3 #chat", SIX).answers == (
        Answer(3, "Restorative circles #chat"),
    )


def test_label_number_outside_the_chat_is_not_a_label() -> None:
    """ "A9:" in a 6-question chat is not an answer."""
    assert kind("A9: learning walks") is PostKind.CONVERSATION


def test_label_zero_is_not_a_label() -> None:
    """ "A0:" is not an answer."""
    assert kind("A0: testing") is PostKind.CONVERSATION


# --- false friends --------------------------------------------------------------------------


def test_a1_sauce_inside_a_sentence_is_not_a_label() -> None:
    """ "A1 steak sauce" inside a sentence is a word, not an answer."""
    assert kind("Nothing beats A1 steak sauce") is PostKind.CONVERSATION


def test_a1_sauce_at_the_start_is_not_a_label() -> None:
    """ "A1 sauce ..." at the start is a thing, not an answer to Q1."""
    assert kind("A1 sauce on everything tonight") is PostKind.CONVERSATION


def test_grade_a1_and_a4_paper_are_words() -> None:
    """ "grade A1" and "A4 paper" are not labels."""
    assert kind("We buy grade A1 eggs") is PostKind.CONVERSATION
    assert kind("A4 paper for anchor charts") is PostKind.CONVERSATION


def test_mid_sentence_label_needs_a_colon() -> None:
    """ "the A2 answers" mid-sentence is talk about answers, not an answer."""
    assert kind("Loving everyone's A2 answers tonight") is PostKind.CONVERSATION


def test_question_numbers_and_grades_are_not_answers() -> None:
    """ "Q2", "4A", "A+", "A/B" are never answer labels."""
    for text in ("Q2 is coming up!", "My 4A class", "An A+ chat", "A/B testing"):
        assert kind(text) is PostKind.CONVERSATION, text


def test_ratios_times_and_decimals_are_not_labels() -> None:
    """ "a 1:1 program", "A1:30", "A1.5" and "R2-D2" are not labels."""
    for text in ("we have a 1:1 program", "A1:30 start", "up A1.5%", "R2-D2 robot"):
        assert kind(text) is PostKind.CONVERSATION, text


def test_label_inside_a_link_is_ignored() -> None:
    """An "A1:" inside a URL is not a label."""
    assert kind("Slides: https://example.org/docs/A1:intro") is PostKind.CONVERSATION


# --- context --------------------------------------------------------------------------------


def test_reply_under_a_question_without_a_number_answers_it() -> None:
    """A reply under Q3 without a number answers Q3 with its whole text."""
    context = PostContext(question_count=6, reply_to_question=3)
    assert attribute("We use Flip videos.", context).answers == (Answer(3, "We use Flip videos."),)


def test_quote_of_a_question_without_a_number_answers_it() -> None:
    """A quote of Q4 without a number answers Q4."""
    assert answered("Peer observation", PostContext(6, quote_of_question=4)) == [(4, None)]


def test_labels_win_over_the_reply_context() -> None:
    """A labelled reply under Q3 follows its labels ("A2:" answers Q2)."""
    assert answered("A2: wrong thread, sorry", PostContext(6, reply_to_question=3)) == [(2, None)]


def test_out_of_range_label_in_a_reply_falls_back_to_the_thread() -> None:
    """A reply under Q4 whose only label is out of range answers Q4 with the full text."""
    context = PostContext(6, reply_to_question=4)
    assert attribute("A9: exit slips", context).answers == (Answer(4, "A9: exit slips"),)


def test_reaction_under_a_question_is_conversation() -> None:
    """ "Great question!" or "Love this 🙌" under a question is conversation, not an answer."""
    context = PostContext(6, reply_to_question=1)
    for text in ("Great question!", "@jen Love this!! 🙌", "+1", "👏🏽", "¡Excelente pregunta!"):
        assert kind(text, context) is PostKind.CONVERSATION, text


def test_shared_link_under_a_question_is_an_answer() -> None:
    """A reply under Q2 that is only a link is an answer (a shared resource)."""
    assert answered("https://example.org/plan.pdf", PostContext(6, reply_to_question=2)) == [
        (2, None)
    ]


def test_reply_to_the_welcome_is_an_introduction() -> None:
    """An unlabelled reply to the welcome prompt is an introduction."""
    assert kind("Jen, 3rd grade, Oak ES", PostContext(6, reply_to_welcome=True)) is (
        PostKind.INTRODUCTION
    )


def test_thanks_or_welcome_under_the_welcome_is_conversation() -> None:
    """ "Thanks for hosting!" or a host's "Welcome, Andre!" under the welcome is conversation."""
    context = PostContext(6, reply_to_welcome=True)
    assert kind("Thanks for hosting tonight!", context) is PostKind.CONVERSATION
    assert kind("Welcome, Andre! 😊", context) is PostKind.CONVERSATION


def test_top_level_unlabelled_post_is_conversation_during_a_question() -> None:
    """An unlabelled top-level post during Q1 is conversation: no guessing from the clock."""
    assert kind("We start with a circle.", PostContext(6, current_question=1)) is (
        PostKind.CONVERSATION
    )


def test_top_level_self_introduction_is_an_introduction() -> None:
    """ "Hi all! I'm Priya, 5th grade ..." posted top-level is an introduction."""
    assert kind("Hi all! I'm Priya, a 5th grade teacher") is PostKind.INTRODUCTION
    assert kind("Hello from Ohio! 👋 #edchat") is PostKind.INTRODUCTION


def test_bare_label_answers_the_current_question() -> None:
    """ "A: ..." without a number answers the question being discussed."""
    assert attribute("A: thumbs up/down", PostContext(6, current_question=4)).answers == (
        Answer(4, "thumbs up/down"),
    )


def test_bare_label_without_context_is_conversation() -> None:
    """ "A: ..." with no question posted yet is conversation."""
    assert kind("A: no idea", PostContext(6)) is PostKind.CONVERSATION


def test_pathological_input_is_quick() -> None:
    """Long runs of mentions, labels or punctuation are attributed in well under a second."""
    texts = ["@a" * 5000 + " x", "A1/" * 3000, "!" * 20000 + "A1", "Hi " * 5000]
    start = time.perf_counter()
    for text in texts:
        attribute(text, SIX)
    assert time.perf_counter() - start < 2


# --- HTML -----------------------------------------------------------------------------------

HASHTAG = (
    '<a href="https://h.example/tags/edchat" class="mention hashtag" rel="tag">#<span>edchat</span>'
    "</a>"
)
MENTION = (
    '<span class="h-card" translate="no"><a href="https://h.example/@mod" class="u-url mention">'
    "@<span>mod</span></a></span>"
)


def test_attribute_html_reads_mastodon_content() -> None:
    """attribute_html answers from a status' HTML, keeping mention and hashtag text."""
    result = attribute_html(f"<p>{MENTION} A3 choice boards {HASHTAG}</p>", SIX)
    assert result.answers == (Answer(3, "@mod choice boards #edchat"),)


# --- someone else's words -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "RT @bob: A2: peer review",
        "rt @sarah_reads a2: book tasting",
        "MT @x A1 greet every kid",
        "Love this! RT @x: A3: circles",
        "> A2: exit slips\nSo true!",
        "“A1: names first” — @principal_k",
        '"A4: ask the kids" - @jessie_t 👏',
        "«R2 : le tutorat» — @prof",
        "\u201eA1: Beziehung zuerst\u201c \u2013 @frau_k",
        "@amy_k said it best: A3: kids need mirrors",
        "Loving this from @jlee: A1 - greet every kid",
        "Quoting @mr_b: 'A2: the teacher next door'",
        "A5: warm calling > cold calling via @msrivera",
    ],
)
def test_someone_elses_words_are_not_an_answer(text: str) -> None:
    """A retweet, a credited quote, a "> " line or a post passed on "via @user" is conversation:
    the labels in it are someone else's."""
    assert attribute(text, SIX) == Attribution(PostKind.CONVERSATION)


def test_own_label_beside_a_retweet_answers_with_own_words() -> None:
    """ "A3: Same here! RT @amy: A3: ..." answers Q3 with the poster's own label and words."""
    assert attribute("A3: Same here! RT @amy: A3: restorative circles", SIX).answers == (
        Answer(3, "Same here!"),
    )


def test_retweet_under_a_question_is_conversation_but_a_comment_answers() -> None:
    """Under Q3, a bare retweet is conversation; words of one's own before it answer Q3."""
    context = PostContext(6, reply_to_question=3)
    assert kind("RT @x: A3: visual schedules", context) is PostKind.CONVERSATION
    assert answered("We do this too! RT @x: A3: circles", context) == [(3, None)]


def test_scare_quotes_via_mid_post_and_cc_are_the_posters_words() -> None:
    """Quotation marks around a phrase, "via" mid-post and "cc @user" are not quoting."""
    assert answered('A2: we use "think-pair-share" daily') == [(2, None)]
    assert answered("A5: read this via @edutopia, it changed my practice") == [(5, None)]
    assert answered("A2: peer tutoring cc @mrsb @ell_team") == [(2, None)]


def test_blockquote_in_html_is_someone_elses() -> None:
    """A Mastodon post quoting an answer in <blockquote> and reacting to it is conversation."""
    html = "<blockquote><p>A3: let kids lead data chats</p></blockquote><p>This. So much this.</p>"
    assert attribute_html(html, SIX) == Attribution(PostKind.CONVERSATION)
    own = "<blockquote><p>Q2: How do you welcome newcomers?</p></blockquote><p>A2: buddies</p>"
    assert attribute_html(own, SIX).answers == (Answer(2, "buddies"),)


# --- A + number that is a word --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "A 2-day PD on restorative practices changed my approach",
        "a 2-min video is all you need",
        "a 5-minute brain break after lunch",
        "A 3-2-1 exit ticket is still my go-to",
        "a 3rd grader told me my slides were mid",
        "A 6th grader taught me this",
        "A1-Niveau ist das Ziel",
        "A1-A2 learners need visuals",
        "A 1ª vez foi um caos",
        "a 30 sec timer + turn and talk",
        "A 2 hour block would be a dream",
        "A1 is still my favourite question",
    ],
)
def test_a_number_that_starts_a_word_is_not_a_label(text: str) -> None:
    """A hyphen glued to a word ("a 2-day PD", "A1-Niveau"), an ordinal ("a 3rd grader") or a
    spaced "a 2 hour" makes a word, not a label."""
    assert kind(text) is PostKind.CONVERSATION


def test_a_dash_set_off_by_a_space_or_a_long_dash_is_a_separator() -> None:
    """ "A3 - x", "A3- x" and "A3—x" are labels; only the ASCII hyphen glued to a word is not."""
    for text in ("A3 - small groups", "A3- small groups", "A3\u2014small groups"):
        assert attribute(text, SIX).answers == (Answer(3, "small groups"),), text


def test_a_compound_under_a_question_answers_it_whole() -> None:
    """Under Q2, "A 2-day PD wouldn't fix it" answers Q2 with its whole text."""
    context = PostContext(6, reply_to_question=2)
    text = "A 2-day PD wouldn't fix it, but a year of coaching might"
    assert attribute(text, context).answers == (Answer(2, text),)


# --- headers naming a question --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("Re Q3: exit tickets", 3),
        ("RE: Q5 - coaching", 5),
        ("@edchatbot re Q4: rounds", 4),
        ("For Q2 - bilingual newsletters", 2),
        ("For Q5, honestly just more time", 5),
        ("Answer to Q2: family nights", 2),
        ("Answering Q1: greeting at the door", 1),
        ("Back to Q2 for a sec: home visits", 2),
        ("Q3 answer: circles", 3),
        ("Q4 \u2192 peer observation", 4),
        ("Q1 -> morning meeting", 1),
        ("Q6 \U0001f449 celebrate small wins", 6),
    ],
)
def test_question_headers_count_as_labels(text: str, question: int) -> None:
    """ "Re Q3:", "For Q2 -", "Answer to Q4", "Q5 answer:", "Q1 →" answer that question."""
    assert answered(text) == [(question, None)]


def test_header_parts_combinations_and_range() -> None:
    """Headers take parts and combinations like labels; out-of-range questions are not read."""
    assert answered("Re Q2b: peer tutoring") == [(2, "b")]
    assert answered("Re Q1 & Q2: relationships") == [(1, None), (2, None)]
    assert kind("Re Q9: is there a Q9?") is PostKind.CONVERSATION


def test_bare_question_number_is_never_a_label() -> None:
    """ "Q3: ..." and "Q2 - ..." are how questions are posted: not answers at the top level."""
    for text in ("Q3: We use circles", "Q2 - buddies", "Q4 coming up in 2 minutes!"):
        assert kind(text) is PostKind.CONVERSATION, text
    assert answered("Q3/A3: goal-setting conferences") == [(3, None)]


def test_header_mid_sentence_is_talk() -> None:
    """ "Reading everyone's answers to Q2: ..." mid-sentence is talk about the answers."""
    assert kind("Reading everyone's answers to Q2: so many ideas!") is PostKind.CONVERSATION


# --- other languages ------------------------------------------------------------------------


def test_italian_dutch_and_unnumbered_answer_words() -> None:
    """ "Risposta 2:", "Antwoord 3:", "A1 en A2:" and "Antwort:" are labels."""
    assert answered("Risposta 2: lavori di gruppo") == [(2, None)]
    assert answered("Antwoord 3: feedback van klasgenoten") == [(3, None)]
    assert answered("A1 en A2: relaties") == [(1, None), (2, None)]
    assert answered("Antwort: Feedback-Kultur", PostContext(6, current_question=3)) == [(3, None)]


# --- reactions and introductions ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Ooh I love that idea, stealing it!",
        "Following this thread 👀",
        "+1 to everything said here",
        "A+ answer, @coach_lee 👏",
        "Tout à fait d'accord ! 👏",
        "Concordo 100%! 👏",
        "Genau so! 👍",
        "Bellissima domanda!",
        "Helemaal mee eens!",
        "Τέλεια ερώτηση! 👏",
        "Danke fürs Teilen!",
    ],
)
def test_reactions_in_many_languages_are_conversation(text: str) -> None:
    """Praise, agreement and thanks under a question, in any of the chats' languages."""
    assert kind(text, PostContext(6, reply_to_question=3)) is PostKind.CONVERSATION


def test_reaction_with_content_answers() -> None:
    """ "Same here! Morning meetings all the way" under Q1 answers Q1."""
    context = PostContext(6, reply_to_question=1)
    assert answered("Same here! Morning meetings all the way 🙌", context) == [(1, None)]
    assert answered("@dcsdchat Isn't it always about relationships?", context) == [(1, None)]


@pytest.mark.parametrize(
    "text",
    [
        "Jumping in late! Kris, instructional coach, DCSD",
        "Present! 🙋 #pbischat",
        "Lurking tonight but here!",
        "Checking in w/ my coffee ☕ Deb, 3rd grade, Parker",
        "A 2nd grade teacher from Ohio checking in! 👋",
        "First time joining #ELLchat! I'm Thu, newcomer teacher in San Jose",
        "Buonasera! Marco, prof di matematica a Torino, mi unisco al chat",
        "Hola a todos, Luis desde Monterrey, profe de inglés. ¡Presente!",
    ],
)
def test_check_ins_at_the_top_level_are_introductions(text: str) -> None:
    """A check-in phrase, or a greeting then the poster's name and role, introduces them."""
    assert kind(text) is PostKind.INTRODUCTION


def test_greeting_alone_or_host_talk_at_the_top_level_is_conversation() -> None:
    """ "Good evening #edchat!" or "Thanks for joining tonight's chat" is not an introduction."""
    for text in ("Good evening #edchat! 👋", "That's a wrap! Thanks for joining tonight's chat"):
        assert kind(text) is PostKind.CONVERSATION, text


def test_check_in_only_under_a_question_is_an_introduction() -> None:
    """Under Q2, "Late but here! Chris, 3rd grade" introduces; with an answer in it, answers."""
    context = PostContext(6, reply_to_question=2)
    assert kind("Late but here! Chris, 3rd grade, Highlands Ranch", context) is (
        PostKind.INTRODUCTION
    )
    assert answered("Late but here! We pair newcomers with a buddy", context) == [(2, None)]
    assert answered("Relationships, routines, and rituals", context) == [(2, None)]
