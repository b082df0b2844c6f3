//! Unit tests of the writer and readers together.

use crate::{
    Applied, ContentIndex, IndexError, IndexSettings, Offsets, PlainQuery, QueryError,
    SearchHandle, SearchPage, MAX_QUERY_PARTS,
};
use chrono::Utc;
use std::path::Path;

use cordon_domain::{Action, Channel, ContentItem, ContentKind, DecidedBy, Verdict, Visibility};

fn q(text: &str) -> PlainQuery {
    PlainQuery::parse(text).unwrap()
}

#[test]
fn public_queries_are_plain_words_and_phrases() {
    assert!(q("").is_empty());
    assert!(q("  ").is_empty());
    assert_eq!(q("a \"b c\" d").parts.len(), 3);
    assert_eq!(q("(((((x))))) AND score:[0.5 TO 1]").parts.len(), 5);
    assert!(
        !q("!!! ???").is_empty(),
        "punctuation finds nothing, it does not list all"
    );
    let many = "w ".repeat(MAX_QUERY_PARTS + 1);
    assert_eq!(PlainQuery::parse(&many), Err(QueryError::TooManyParts));
    let deep = format!("{}x{}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(q(&deep).parts.len(), 1);
}

fn item(id: &str, version: u64, text: &str) -> ContentItem {
    ContentItem {
        id: id.into(),
        kind: ContentKind::Listing,
        channel: Channel {
            id: "c1".into(),
            username: Some("shop".into()),
            title: None,
            subscribers: None,
        },
        text: text.into(),
        title: None,
        price: None,
        currency: None,
        lang: Some("en".into()),
        media: Vec::new(),
        url: None,
        published_at: Utc::now(),
        indexed_at: Utc::now(),
        version,
    }
}

#[test]
fn channel_verdicts_hide_every_item_of_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (mut index, search) = open(dir.path(), false);
    index.apply_content(item("a", 1, "bikes")).unwrap();
    index.apply_content(item("b", 1, "bikes")).unwrap();
    let human = |id| DecidedBy::Human {
        moderator: "ann".into(),
        decision_id: id,
    };
    let mut block = verdict(&Verdict::channel_key("c1"), 0, Action::Suppress, human(1));
    block.channel_id = Some("c1".into());
    index.apply_verdict(block.clone()).unwrap();
    index.commit(&Offsets::new()).unwrap();
    assert!(search.search(&q("bikes"), 0, 10).unwrap().items.is_empty());
    assert!(search.channel_blocked("c1").unwrap());
    // An item of the channel arriving later is hidden too; moderators still find it.
    index.apply_content(item("c", 1, "bikes")).unwrap();
    index.commit(&Offsets::new()).unwrap();
    assert!(search.search(&q("bikes"), 0, 10).unwrap().items.is_empty());
    assert!(search.get("c").unwrap().is_some());
    // A later restore unblocks; the older block re-delivered changes nothing.
    let mut unblock = verdict(&Verdict::channel_key("c1"), 0, Action::Restore, human(2));
    unblock.channel_id = Some("c1".into());
    index.apply_verdict(unblock).unwrap();
    assert_eq!(index.apply_verdict(block).unwrap(), Applied::Stale);
    index.commit(&Offsets::new()).unwrap();
    assert_eq!(search.search(&q("bikes"), 0, 10).unwrap().total, 3);
    assert!(!search.channel_blocked("c1").unwrap());
}

#[test]
fn an_item_changed_by_several_records_is_written_once_per_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut index, search) = open(dir.path(), false);
    let model = || DecidedBy::Model {
        model_version: "m".into(),
        stage: cordon_domain::Stage::Fast,
    };
    index.apply_content(item("a", 1, "bikes")).unwrap();
    index
        .apply_verdict(verdict("a", 1, Action::Allow, model()))
        .unwrap();
    index.apply_content(item("a", 2, "bikes cheap")).unwrap();
    index.apply_content(item("b", 1, "bikes")).unwrap();
    assert_eq!(index.pending(), 2);
    // Nothing is visible before the commit; after it, one document per item.
    assert_eq!(search.num_docs(), 0);
    index.commit(&Offsets::new()).unwrap();
    assert_eq!(search.num_docs(), 2);
    assert_eq!(index.pending(), 0);
    let a = search.get("a").unwrap().unwrap();
    assert_eq!(a.content.unwrap().version, 2);
    assert!(
        a.verdicts.is_empty(),
        "version 1's verdict does not apply to version 2"
    );
    // A verdict for the committed item replaces its document.
    index
        .apply_verdict(verdict("a", 2, Action::Suppress, model()))
        .unwrap();
    index.commit(&Offsets::new()).unwrap();
    assert_eq!(search.num_docs(), 2);
    assert_eq!(search.search(&q("bikes"), 0, 10).unwrap().total, 1);
}

#[test]
fn records_applied_while_a_commit_is_written_go_into_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (mut index, search) = open(dir.path(), false);
    let offsets = |n: i64| Offsets::from([("content".to_string(), [(0, n)].into())]);
    index.apply_content(item("a", 1, "bikes")).unwrap();
    let commit = index.start_commit(&offsets(1)).unwrap();
    assert!(
        matches!(
            index.start_commit(&offsets(1)),
            Err(IndexError::CommitInProgress)
        ),
        "one commit at a time"
    );
    // Applied while the first commit is in progress: the verdict finds the content the commit
    // is writing, and the new item is not part of that commit.
    index
        .apply_verdict(verdict("a", 1, Action::Suppress, model()))
        .unwrap();
    index.apply_content(item("b", 1, "bikes")).unwrap();
    assert_eq!(index.pending(), 2);
    let written = std::thread::spawn(move || commit.write())
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(search.num_docs(), 1);
    assert_eq!(search.search(&q("bikes"), 0, 10).unwrap().total, 1);
    assert_eq!(index.committed_offsets(), &Offsets::new());
    index.finish_commit(written);
    assert_eq!(index.committed_offsets(), &offsets(1));
    index.commit(&offsets(3)).unwrap();
    // The second commit replaced a's document (suppressed now) and added b's.
    assert_eq!(search.num_docs(), 2);
    assert_eq!(ids(&search.search(&q("bikes"), 0, 10).unwrap()), ["b"]);
    drop(index);
    let (reopened, _) = open(dir.path(), false);
    assert_eq!(reopened.committed_offsets(), &offsets(3));
}

fn verdict(id: &str, version: u64, action: Action, by: DecidedBy) -> Verdict {
    Verdict {
        item_id: id.into(),
        item_version: version,
        action,
        decided_by: by,
        category: None,
        score: None,
        scores: None,
        fast_scores: None,
        reason: "test".into(),
        channel_id: None,
        explanation: Vec::new(),
        decided_at: Utc::now(),
    }
}

fn model() -> DecidedBy {
    DecidedBy::Model {
        model_version: "m".into(),
        stage: cordon_domain::Stage::Fast,
    }
}

fn open(dir: &Path, premoderation: bool) -> (ContentIndex, SearchHandle) {
    ContentIndex::open(&IndexSettings {
        dir: dir.to_path_buf(),
        writer_memory_bytes: 20_000_000,
        premoderation,
    })
    .expect("open")
}

fn ids(page: &SearchPage) -> Vec<&str> {
    page.items.iter().map(|h| h.item.id.as_str()).collect()
}

#[test]
fn suppression_versions_and_offsets_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut index, search) = open(dir.path(), false);
    index.apply_content(item("a", 1, "fresh apples")).unwrap();
    index
        .apply_content(item("b", 1, "fresh apples and pears"))
        .unwrap();
    // A verdict that arrives before its content waits for it.
    index
        .apply_verdict(verdict("c", 1, Action::Suppress, model()))
        .unwrap();
    index
        .apply_content(item("c", 1, "apples for sale"))
        .unwrap();
    index
        .apply_verdict(verdict("b", 1, Action::Suppress, model()))
        .unwrap();
    let mut offsets = Offsets::new();
    offsets.entry("content".into()).or_default().insert(0, 42);
    index.commit(&offsets).unwrap();
    assert_eq!(ids(&search.search(&q("apples"), 0, 10).unwrap()), vec!["a"]);
    let b = search.get("b").unwrap().unwrap();
    assert_eq!(b.visibility, Visibility::Suppressed);

    // A person restores b; a re-delivered model verdict does not undo that.
    let human = DecidedBy::Human {
        moderator: "ann".into(),
        decision_id: 1,
    };
    index
        .apply_verdict(verdict("b", 1, Action::Restore, human))
        .unwrap();
    assert_eq!(
        index
            .apply_verdict(verdict("b", 1, Action::Suppress, model()))
            .unwrap(),
        Applied::Stale
    );
    // An old version arriving late is ignored; a new version is judged afresh.
    assert_eq!(
        index.apply_content(item("a", 0, "old")).unwrap(),
        Applied::Stale
    );
    index.apply_content(item("c", 2, "apples, edited")).unwrap();
    offsets.get_mut("content").unwrap().insert(0, 50);
    index.commit(&offsets).unwrap();
    index.close().unwrap();

    let (index, search) = open(dir.path(), false);
    assert_eq!(index.committed_offsets()["content"][&0], 50);
    let page = search.search(&q("apples"), 0, 10).unwrap();
    let mut found = ids(&page);
    found.sort();
    assert_eq!(found, vec!["a", "b", "c"]);
    assert_eq!(search.search(&q("apples"), 0, 2).unwrap().total, 3);
    assert_eq!(search.search(&q("apples"), 2, 2).unwrap().items.len(), 1);
    assert_eq!(search.search(&q(""), 0, 10).unwrap().total, 3);
    // No operators: `AND` is the word "and" (in b), brackets are nothing.
    assert_eq!(
        ids(&search.search(&q("AND OR ((("), 0, 10).unwrap()),
        vec!["b"]
    );
    assert_eq!(search.search(&q("((( )))"), 0, 10).unwrap().total, 0);
    // Words and phrases, never fields: the moderation fields cannot be queried.
    assert_eq!(search.search(&q("\"apples for\""), 0, 10).unwrap().total, 0);
    assert_eq!(
        search.search(&q("\"fresh apples\""), 0, 10).unwrap().total,
        2
    );
    for probe in [
        "score:[0 TO 1]",
        "category:drugs",
        "visibility:suppressed",
        "id:b",
    ] {
        assert_eq!(search.search(&q(probe), 0, 10).unwrap().total, 0, "{probe}");
    }
}

#[test]
fn premoderation_hides_until_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let (mut index, search) = open(dir.path(), true);
    index.apply_content(item("a", 1, "bikes")).unwrap();
    index.apply_content(item("b", 1, "bikes")).unwrap();
    index
        .apply_verdict(verdict("a", 1, Action::Allow, model()))
        .unwrap();
    index
        .apply_verdict(verdict("b", 1, Action::Review, model()))
        .unwrap();
    index.commit(&Offsets::new()).unwrap();
    assert_eq!(ids(&search.search(&q("bikes"), 0, 10).unwrap()), vec!["a"]);
    assert_eq!(
        search.get("b").unwrap().unwrap().visibility,
        Visibility::Pending
    );
}
