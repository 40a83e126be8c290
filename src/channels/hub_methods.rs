//! `JoinGroup`, `LeaveGroup`, `SendToGroup`, `UploadToGroup` and `GroupMembers`: the channel
//! service's operations for a hub connection acting on itself. A refusal is an error
//! completion with the rule's text, never a dropped connection.

use super::{ChannelError, ChannelService, On, Sender};
use hub::{Caller, HubError, HubMethods, UploadStream};
use router::Payload;
use serde_json::Value;

/// The members `GroupMembers` returns at most (the count tells how many there are).
pub const MEMBERS_PAGE: usize = 1000;

fn refused(error: ChannelError) -> HubError {
    HubError::Refused(error.to_string())
}

fn sender(caller: &Caller) -> Sender<'_> {
    Sender {
        identity: &caller.identity,
        connection_id: Some(caller.connection_id.as_str()),
        echo: true,
    }
}

pub fn hub_methods(channels: ChannelService, methods: HubMethods) -> HubMethods {
    let (join, leave, send, upload, members) = (
        channels.clone(),
        channels.clone(),
        channels.clone(),
        channels.clone(),
        channels,
    );
    methods
        .method("JoinGroup", move |caller: Caller, (group,): (String,)| {
            let channels = join.clone();
            async move {
                let channel = channels.wire(&group).map_err(refused)?;
                let own = On::Own(caller.connection_id.as_str());
                channels
                    .join(&caller.identity, own, &channel, false)
                    .await
                    .map_err(refused)
            }
        })
        .method("LeaveGroup", move |caller: Caller, (group,): (String,)| {
            let channels = leave.clone();
            async move {
                let channel = channels.wire(&group).map_err(refused)?;
                let own = On::Own(caller.connection_id.as_str());
                channels
                    .leave(&caller.identity, own, &channel)
                    .await
                    .map_err(refused)
            }
        })
        .method(
            "SendToGroup",
            move |caller: Caller, (group, data): (String, Value)| {
                let outcome = send
                    .wire(&group)
                    .and_then(|channel| send.send(sender(&caller), &channel, Payload::Json(data)))
                    .map(|_| ())
                    .map_err(refused);
                async move { outcome }
            },
        )
        .upload(
            "UploadToGroup",
            1,
            move |caller: Caller, (group,): (String,), mut streams: Vec<UploadStream>| {
                let channels = upload.clone();
                async move {
                    let channel = channels.wire(&group).map_err(refused)?;
                    let Some(mut items) = streams.pop() else {
                        return Err(HubError::Refused("UploadToGroup takes one stream.".into()));
                    };
                    while let Some(item) = items.next().await {
                        match item {
                            Ok(data) => {
                                channels
                                    .send(sender(&caller), &channel, Payload::Json(data.into()))
                                    .map_err(refused)?;
                            }
                            // The client ended its stream with an error: stop sending.
                            Err(error) => {
                                return Err(HubError::Refused(format!(
                                    "The upload stream failed: {error}"
                                )))
                            }
                        }
                    }
                    Ok(())
                }
            },
        )
        .method(
            "GroupMembers",
            move |caller: Caller, (group,): (String,)| {
                let members = members.clone();
                async move {
                    let channel = members.wire(&group).map_err(refused)?;
                    let id = Some(caller.connection_id.as_str());
                    members
                        .members(&caller.identity, id, &channel, 1, MEMBERS_PAGE)
                        .await
                        .map_err(refused)
                }
            },
        )
}
