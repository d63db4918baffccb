//! The closed value sets of the contract. Each enum's wire name is written
//! once, here; `Serialize`/`Deserialize` and the decoder use it, and the
//! ClickHouse `Enum8` columns use the discriminants.

use serde::{Deserialize, Serialize};

use crate::fields::ContractEnum;

macro_rules! contract_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal => $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant = $code),+
        }

        impl ContractEnum for $name {
            const VARIANTS: &'static [(&'static str, Self)] = &[$(($wire, $name::$variant)),+];
        }

        impl $name {
            /// The name on the wire and in ClickHouse.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// The `Enum8` value in ClickHouse.
            pub const fn code(self) -> u8 {
                self as u8
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

contract_enum! {
    /// How a procedure is offered online.
    ServiceLevel {
        /// Toàn trình: every step online.
        FullOnline = "full_online" => 1,
        /// Một phần: some steps online.
        PartialOnline = "partial_online" => 2,
        Offline = "offline" => 3,
    }
}

contract_enum! {
    /// How a dossier was filed (KenhThucHien 1 / 2 / 3).
    Channel {
        InPerson = "in_person" => 1,
        Online = "online" => 2,
        Postal = "postal" => 3,
    }
}

contract_enum! {
    ApplicantType {
        Citizen = "citizen" => 1,
        Business = "business" => 2,
    }
}

contract_enum! {
    PaymentStatus {
        Succeeded = "succeeded" => 1,
        Failed = "failed" => 2,
        Refunded = "refunded" => 3,
    }
}

contract_enum! {
    PaymentMethod {
        /// The national public-service portal's payment platform.
        NationalPlatform = "national_platform" => 1,
        /// A ministry's or province's own gateway.
        LocalGateway = "local_gateway" => 2,
        /// Cash or counter.
        Offline = "offline" => 3,
    }
}

impl PaymentMethod {
    /// Online payments count towards the online-payment rates.
    pub const fn is_online(self) -> bool {
        matches!(self, PaymentMethod::NationalPlatform | PaymentMethod::LocalGateway)
    }
}

contract_enum! {
    Rating {
        Satisfied = "satisfied" => 1,
        Neutral = "neutral" => 2,
        Unsatisfied = "unsatisfied" => 3,
    }
}

contract_enum! {
    /// One step of a petition (phản ánh, kiến nghị; CONTRACT.md §8).
    PetitionStatus {
        Submitted = "submitted" => 1,
        /// Sent on to the agency that must answer it.
        Forwarded = "forwarded" => 2,
        Received = "received" => 3,
        SupplementRequested = "supplement_requested" => 4,
        Rejected = "rejected" => 5,
        Processing = "processing" => 6,
        Answered = "answered" => 7,
        /// The answer is published on the national portal.
        Published = "published" => 8,
    }
}

contract_enum! {
    /// What a petition is about.
    PetitionClassification {
        /// A rule or procedure (quy định hành chính).
        Regulation = "regulation" => 1,
        /// How an official behaved (hành vi).
        StaffConduct = "staff_conduct" => 2,
        Other = "other" => 3,
    }
}

/// A dossier's processing step (TrangThaiHoSo), 1-10 on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[repr(u8)]
pub enum Status {
    /// Mới đăng ký.
    Submitted = 1,
    /// Được tiếp nhận.
    Accepted = 2,
    NotAccepted = 3,
    Processing = 4,
    SupplementRequested = 5,
    PaymentRequested = 6,
    Withdrawn = 7,
    Stopped = 8,
    /// Đã xử lý xong.
    Resolved = 9,
    /// Đã trả kết quả.
    ResultReturned = 10,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Submitted,
        Status::Accepted,
        Status::NotAccepted,
        Status::Processing,
        Status::SupplementRequested,
        Status::PaymentRequested,
        Status::Withdrawn,
        Status::Stopped,
        Status::Resolved,
        Status::ResultReturned,
    ];

    pub const fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Status> {
        Status::ALL.get(usize::from(code).wrapping_sub(1)).copied()
    }

    /// Ends the dossier's processing: the on-time rate looks at the first such event.
    pub const fn is_closing(self) -> bool {
        matches!(
            self,
            Status::NotAccepted | Status::Withdrawn | Status::Stopped | Status::Resolved | Status::ResultReturned
        )
    }

    /// Counts towards the result-digitization denominator.
    pub const fn is_resolved(self) -> bool {
        matches!(self, Status::Resolved | Status::ResultReturned)
    }
}

impl From<Status> for u8 {
    fn from(s: Status) -> u8 {
        s.code()
    }
}

impl TryFrom<u8> for Status {
    type Error = String;
    fn try_from(code: u8) -> Result<Self, String> {
        Status::from_code(code).ok_or_else(|| format!("{code} is not a status code (1-10)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_round_trip() {
        for code in 1..=10u8 {
            assert_eq!(Status::from_code(code).map(Status::code), Some(code));
        }
        assert_eq!(Status::from_code(0), None);
        assert_eq!(Status::from_code(11), None);
    }

    #[test]
    fn wire_names_round_trip() {
        for (name, v) in Channel::VARIANTS {
            assert_eq!(v.as_str(), *name);
            assert_eq!(Channel::from_name(name), Some(*v));
        }
        assert_eq!(serde_json::to_string(&PaymentMethod::LocalGateway).unwrap(), "\"local_gateway\"");
    }
}
