//! Listings that page with a token: each page is asked for with the token
//! the one before it gave, until a page gives none (or an empty one, which
//! some APIs send on their last page). Every listing of the provider goes
//! through [`follow`], so each has a bound: a token that never ends (a
//! faulty proxy, an API bug) stops the listing with an error naming it,
//! instead of a loop that never returns or a listing cut short in silence.

use std::future::Future;

use super::ProviderError;

/// Asks for the pages of one listing until it ends: `ask` sends the call
/// for one page with the token given (`None` for the first), `take` takes
/// in what the page holds and returns the next token (`None` also to stop
/// early, a listing that has read all it needs). More than `max_pages`
/// pages is an error naming `operation` and what is listed (`what`, asked
/// only then).
pub(super) async fn follow<Page, Ask, Fut, Take, W>(
    operation: &str,
    what: W,
    max_pages: usize,
    mut ask: Ask,
    mut take: Take,
) -> Result<(), ProviderError>
where
    Ask: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page, ProviderError>>,
    Take: FnMut(Page) -> Result<Option<String>, ProviderError>,
    W: FnOnce() -> String,
{
    let mut token: Option<String> = None;
    for _ in 0..max_pages {
        match take(ask(token.take()).await?)? {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(()),
        }
    }
    Err(ProviderError::Transport {
        operation: operation.to_string(),
        message: format!(
            "{} did not end after {max_pages} pages: its next token never ran out",
            what()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages served from `pages` (the token each gives), recording the
    /// token each was asked with.
    async fn listing(
        pages: &[Option<&str>],
        max: usize,
    ) -> (Result<(), ProviderError>, Vec<Option<String>>) {
        let mut asked = Vec::new();
        let mut served = pages.iter();
        let out = follow(
            "ListThings",
            || "the things of `x`".into(),
            max,
            |token| std::future::ready(Ok(token)),
            |token| {
                asked.push(token);
                Ok(served.next().copied().flatten().map(str::to_string))
            },
        )
        .await;
        (out, asked)
    }

    #[tokio::test]
    async fn each_page_is_asked_with_the_token_of_the_one_before() {
        let (out, asked) = listing(&[Some("a"), Some("b"), None], 10).await;
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(
            asked,
            vec![None, Some("a".to_string()), Some("b".to_string())]
        );
    }

    #[tokio::test]
    async fn an_empty_token_ends_the_listing() {
        let (out, asked) = listing(&[Some("a"), Some("")], 10).await;
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(asked.len(), 2);
    }

    #[tokio::test]
    async fn a_token_that_never_ends_is_an_error_after_the_bound() {
        let endless = vec![Some("again"); 50];
        let (out, asked) = listing(&endless, 7).await;
        assert_eq!(asked.len(), 7, "exactly the bound of pages is asked for");
        let Err(ProviderError::Transport { operation, message }) = out else {
            panic!("{out:?}")
        };
        assert_eq!(operation, "ListThings");
        assert_eq!(
            message,
            "the things of `x` did not end after 7 pages: its next token never ran out"
        );
    }
}
