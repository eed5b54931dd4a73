//! Limits on what one statement may ask of the planner. A chain of infix
//! operators (`1+1+…+1`, `a = 1 OR a = 2 OR …`) parses without recursion
//! but becomes a tree as deep as the chain is long, and everything after
//! the parser (planning, optimising, dropping the tree) walks it
//! recursively: 1,600 terms overflowed a 2 MiB stack and took the server
//! down. So the operators of one chain are counted on the tokens, before a
//! tree is built, and a statement past the limit is refused with
//! PostgreSQL's "statement too complex" (54001). Prefix nesting (parentheses,
//! function calls, unary operators) is bounded by the parser's own
//! recursion limit.

use datafusion::sql::sqlparser::dialect::Dialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Result, SluiceError};

/// The most infix operators in one chain. The runtime's threads have 8 MiB
/// stacks (main.rs); a debug build planned 1,200-term sums in 2 MiB.
pub const MAX_OPERATOR_CHAIN: usize = 1_000;

/// Refuses a statement with an operator chain past [`MAX_OPERATOR_CHAIN`].
/// Operators are counted per parenthesis level and reset by a comma; the
/// count over-approximates one chain (keywords between clauses do not reset
/// it), which only matters past a thousand operators in one clause.
pub fn check_complexity(dialect: &dyn Dialect, sql: &str) -> Result<()> {
    // Tokens that can join two operands into one node.
    let joins = |t: &Token| match t {
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::Eq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::DoubleColon
        | Token::Ampersand
        | Token::Pipe
        | Token::Caret
        | Token::Tilde
        | Token::LBracket
        | Token::Arrow
        | Token::LongArrow
        | Token::HashArrow
        | Token::HashLongArrow => true,
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::COLLATE
                | Keyword::AT
        ),
        _ => false,
    };
    // Text that does not tokenize is the parser's to report, with its
    // position.
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize() else {
        return Ok(());
    };
    let mut chains: Vec<usize> = vec![0];
    for token in &tokens {
        match token {
            Token::LParen => chains.push(0),
            Token::RParen if chains.len() > 1 => {
                chains.pop();
            }
            Token::Comma | Token::SemiColon => {
                if let Some(c) = chains.last_mut() {
                    *c = 0;
                }
            }
            t if joins(t) => {
                if let Some(c) = chains.last_mut() {
                    *c += 1;
                    if *c > MAX_OPERATOR_CHAIN {
                        return Err(too_complex());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn too_complex() -> SluiceError {
    SluiceError::TooComplex(format!(
        "statement too complex: more than {MAX_OPERATOR_CHAIN} operators in one expression; \
         split it, or use IN (…) for long lists of alternatives"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::dialect::SluiceDialect;

    fn check(sql: &str) -> Result<()> {
        check_complexity(&SluiceDialect::default(), sql)
    }

    #[test]
    fn long_chains_are_refused_and_lists_are_not() {
        let sum = |n: usize| format!("SELECT {}", vec!["1"; n].join("+"));
        assert!(check(&sum(MAX_OPERATOR_CHAIN + 1)).is_ok());
        let err = check(&sum(MAX_OPERATOR_CHAIN + 2)).expect_err("too long");
        assert_eq!(err.sqlstate(), "54001");
        let ors: Vec<String> = (0..2000).map(|i| format!("a = {i}")).collect();
        assert!(check(&format!("SELECT * FROM t WHERE {}", ors.join(" OR "))).is_err());
        // Commas and parentheses separate expressions.
        let list: Vec<String> = (0..5000).map(|i| format!("{i} + 1")).collect();
        assert!(check(&format!("SELECT {}", list.join(", "))).is_ok());
        let nested: Vec<String> = (0..1500).map(|i| format!("({i} + 1)")).collect();
        assert!(check(&format!("SELECT {}", nested.join(" , "))).is_ok());
    }
}
